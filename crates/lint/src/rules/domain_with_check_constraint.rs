//! A domain with a CHECK constraint: adding or changing one re-checks every column of that domain.

use pg_query::NodeEnum;
use pg_query::protobuf::ConstrType;

use super::{Rule, Violation};
use crate::context::StatementContext;
use crate::sql::{TableName, constraints, inner};

pub(crate) struct Check;

impl Rule for Check {
    fn check(&self, context: &StatementContext<'_>, violations: &mut Vec<Violation>) {
        let (name, message) = match context.node {
            NodeEnum::CreateDomainStmt(create)
                if constraints(&create.constraints)
                    .any(|c| c.contype() == ConstrType::ConstrCheck) =>
            {
                (
                    TableName::from_names(&create.domainname),
                    "a CHECK on a domain is checked in every column of that type; changing it later re-validates all of them, table by table, under locks",
                )
            }
            NodeEnum::AlterDomainStmt(alter)
                if alter.subtype == "C"
                    && matches!(inner(&alter.def), Some(NodeEnum::Constraint(c)) if c.contype() == ConstrType::ConstrCheck && !c.skip_validation) =>
            {
                (
                    TableName::from_names(&alter.type_name),
                    "adding a CHECK to a domain scans every table with a column of that type, under a SHARE lock that blocks writes to each",
                )
            }
            _ => return,
        };
        let name = name.map(|n| n.to_string()).unwrap_or_default();
        violations.push(
            Violation::new(format!("domain `{name}`: {message}"))
                .locks(Vec::new())
                .alternative("-- put the CHECK on the columns instead (add it NOT VALID, then VALIDATE in a later migration):\nALTER TABLE <table> ADD CONSTRAINT <name> CHECK (<column> …) NOT VALID;"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{none, one};

    #[test]
    fn flags_domain_checks() {
        one(
            "domain-with-check-constraint",
            "",
            "CREATE DOMAIN positive AS int CHECK (VALUE > 0)",
        );
        one(
            "domain-with-check-constraint",
            "CREATE DOMAIN positive AS int;",
            "ALTER DOMAIN positive ADD CONSTRAINT p CHECK (VALUE > 0)",
        );
    }

    #[test]
    fn passes_plain_domains_and_not_valid() {
        none(
            "domain-with-check-constraint",
            "",
            "CREATE DOMAIN email AS text",
        );
        none(
            "domain-with-check-constraint",
            "CREATE DOMAIN positive AS int;",
            "ALTER DOMAIN positive ADD CONSTRAINT p CHECK (VALUE > 0) NOT VALID",
        );
    }
}
