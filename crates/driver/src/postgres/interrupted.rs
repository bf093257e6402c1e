//! What a statement that runs outside a transaction left behind on PostgreSQL, read from the
//! catalog (see [`crate::InterruptedOutcome`]). One function per kind of statement; a kind not
//! listed here is run again, which every remaining kind tolerates (VACUUM, CLUSTER, REINDEX,
//! ALTER SYSTEM repeat harmlessly) or reports truthfully itself.

use std::time::Duration;

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableType, ObjectType, RangeVar, ReindexObjectType, TransactionStmtKind,
};
use postgres_protocol::escape::escape_identifier;

use super::PostgresDriver;
use crate::Dialect;
use crate::error::{DriverError, ErrorKind};
use crate::history_sql::literal;
use crate::interrupted::{InterruptedOutcome, Leftover};

/// The temporary table and index a `CREATE INDEX` is rebuilt on to learn the definition the
/// server gives it (empty, inside a transaction that is rolled back).
const PROBE_TABLE: &str = "safeshift_index_probe";
const PROBE_INDEX: &str = "safeshift_index_probe_index";

/// Reads what `sql` left. `lock_timeout` bounds the catalog probe's wait for a lock on the
/// statement's table (it takes the weakest lock there is).
pub(super) fn inspect(
    driver: &mut PostgresDriver,
    sql: &str,
    lock_timeout: Duration,
) -> Result<InterruptedOutcome, DriverError> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::default()) else {
        return Ok(run_again());
    };
    let Some(node) = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|raw| raw.stmt.as_ref())
        .and_then(|stmt| stmt.node.as_ref())
    else {
        return Ok(run_again());
    };
    match node {
        NodeEnum::IndexStmt(index) if index.concurrent => {
            created_index(driver, index, lock_timeout)
        }
        NodeEnum::DropStmt(drop)
            if drop.concurrent && drop.remove_type() == ObjectType::ObjectIndex =>
        {
            dropped_index(driver, drop)
        }
        NodeEnum::ReindexStmt(reindex) => reindexed(driver, reindex),
        NodeEnum::AlterTableStmt(alter) => detached_partition(driver, alter),
        NodeEnum::VacuumStmt(vacuum) if vacuum.is_vacuumcmd => Ok(InterruptedOutcome::RunAgain {
            note: Some(
                "whether the interrupted VACUUM finished cannot be told, and a second one is harmless"
                    .to_owned(),
            ),
        }),
        NodeEnum::CreatedbStmt(create) => {
            named_object(driver, "database", &create.dbname, true)
        }
        NodeEnum::DropdbStmt(drop) => named_object(driver, "database", &drop.dbname, false),
        NodeEnum::CreateTableSpaceStmt(create) => {
            named_object(driver, "tablespace", &create.tablespacename, true)
        }
        NodeEnum::DropTableSpaceStmt(drop) => {
            named_object(driver, "tablespace", &drop.tablespacename, false)
        }
        NodeEnum::TransactionStmt(transaction)
            if matches!(
                transaction.kind(),
                TransactionStmtKind::TransStmtCommitPrepared
                    | TransactionStmtKind::TransStmtRollbackPrepared
            ) =>
        {
            prepared_transaction_ended(driver, &transaction.gid)
        }
        _ => Ok(run_again()),
    }
}

fn run_again() -> InterruptedOutcome {
    InterruptedOutcome::RunAgain { note: None }
}

/// `schema.name` as written, for messages.
fn written(relation: &RangeVar) -> String {
    if relation.schemaname.is_empty() {
        relation.relname.clone()
    } else {
        format!("{}.{}", relation.schemaname, relation.relname)
    }
}

/// The relation quoted for SQL, qualified when the statement qualified it.
fn quoted(relation: &RangeVar) -> String {
    if relation.schemaname.is_empty() {
        escape_identifier(&relation.relname)
    } else {
        format!(
            "{}.{}",
            escape_identifier(&relation.schemaname),
            escape_identifier(&relation.relname)
        )
    }
}

/// `to_regclass('…')` of a relation, resolved through the search path as the statement was.
fn regclass(relation: &RangeVar) -> String {
    format!(
        "to_regclass({})",
        literal(Dialect::Postgres, &quoted(relation))
    )
}

/// An index definition without its name and table, as the server prints it
/// (`UNIQUE … USING btree (n, id) WHERE …`), for the index `i` joined with its class `ic`,
/// table `t` and the table's schema `n`. Two indexes with equal texts index the same way.
/// (`pg_get_indexdef` calls this session's temporary schema `pg_temp`.)
const DEFINITION_TAIL: &str = "CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || \
     substr(pg_get_indexdef(i.indexrelid), length(format('CREATE %sINDEX %I ON %s.%I', \
     CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, ic.relname, \
     CASE WHEN n.oid = pg_my_temp_schema() THEN 'pg_temp' ELSE quote_ident(n.nspname) END, t.relname)) + 2)";

const INDEX_JOINS: &str = "pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
     JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace";

/// `CREATE [UNIQUE] INDEX CONCURRENTLY`: in effect when a valid index with the statement's name
/// (or, unnamed, any valid index) on its table has the definition the statement gives. An
/// INVALID index of that name is left to the runner, which knows whether it is its own.
fn created_index(
    driver: &mut PostgresDriver,
    index: &pg_query::protobuf::IndexStmt,
    lock_timeout: Duration,
) -> Result<InterruptedOutcome, DriverError> {
    let Some(table) = &index.relation else {
        return Ok(run_again());
    };
    let missing = driver.first_row(&format!("SELECT {} IS NULL", regclass(table)))?;
    if missing[0].as_deref() == Some("t") {
        // The statement fails and says so.
        return Ok(run_again());
    }
    let candidates = if index.idxname.is_empty() {
        None
    } else {
        let rows = driver.rows(&format!(
            "SELECT i.indisvalid, i.indrelid = {table}, pg_get_indexdef(i.indexrelid) FROM {INDEX_JOINS} \
             WHERE ic.relname = {name} AND ic.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = {table})",
            table = regclass(table),
            name = literal(Dialect::Postgres, &index.idxname),
        ))?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(run_again());
        };
        if row[0].as_deref() != Some("t") {
            return Ok(run_again());
        }
        if row[1].as_deref() != Some("t") {
            return Ok(InterruptedOutcome::Conflict {
                message: format!(
                    "index {} exists on another table: {}",
                    index.idxname,
                    row[2].clone().unwrap_or_default()
                ),
                hint: conflict_hint(&index.idxname),
            });
        }
        Some(row[2].clone().unwrap_or_default())
    };
    let (wanted, existing) = match definitions(driver, index, table, lock_timeout) {
        Ok(found) => found,
        Err(error) if index.idxname.is_empty() => return Err(error),
        Err(error) => {
            return Ok(InterruptedOutcome::Conflict {
                message: format!(
                    "index {} exists and is valid, but its definition could not be compared with the statement's: {}",
                    index.idxname, error.message
                ),
                hint: conflict_hint(&index.idxname),
            });
        }
    };
    if let Some(definition) = candidates {
        let same = existing
            .iter()
            .any(|found| found.name == index.idxname && found.valid && found.definition == wanted);
        return Ok(if same {
            InterruptedOutcome::InEffect {
                evidence: format!(
                    "index {} exists, is valid and has the statement's definition",
                    index.idxname
                ),
            }
        } else {
            InterruptedOutcome::Conflict {
                message: format!(
                    "index {} exists with another definition: {definition}; the statement builds {wanted}",
                    index.idxname
                ),
                hint: conflict_hint(&index.idxname),
            }
        });
    }
    // Unnamed: the server chose the name, so the definition is all there is to go by.
    if let Some(found) = existing
        .iter()
        .find(|found| found.valid && found.definition == wanted)
    {
        return Ok(InterruptedOutcome::InEffect {
            evidence: format!(
                "index {} on {} is valid and has the statement's definition",
                found.name,
                written(table)
            ),
        });
    }
    let leftovers: Vec<Leftover> = existing
        .iter()
        .filter(|found| !found.valid && found.definition == wanted)
        .map(|found| Leftover {
            description: format!(
                "the INVALID index {} left by the failed attempt",
                found.name
            ),
            drop: drop_index(table.schemaname.as_str(), &found.name),
        })
        .collect();
    Ok(if leftovers.is_empty() {
        run_again()
    } else {
        InterruptedOutcome::Leftovers(leftovers)
    })
}

fn conflict_hint(name: &str) -> String {
    format!(
        "it is not what the statement builds, so safeshift neither records it as applied nor builds over it: \
         drop it (`DROP INDEX CONCURRENTLY {};`) or change the migration, then run `safeshift up` again",
        escape_identifier(name)
    )
}

fn drop_index(schema: &str, name: &str) -> String {
    if schema.is_empty() {
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            escape_identifier(name)
        )
    } else {
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}.{}",
            escape_identifier(schema),
            escape_identifier(name)
        )
    }
}

/// An index on the statement's table.
struct ExistingIndex {
    name: String,
    valid: bool,
    /// See [`DEFINITION_TAIL`].
    definition: String,
}

/// The definition the statement gives its index, and every index on its table. The server is
/// the only judge of how an expression, an operator class or a
/// predicate is written, so the statement's index is built on an empty temporary copy of the
/// table's columns, in a transaction that is rolled back.
fn definitions(
    driver: &mut PostgresDriver,
    index: &pg_query::protobuf::IndexStmt,
    table: &RangeVar,
    lock_timeout: Duration,
) -> Result<(String, Vec<ExistingIndex>), DriverError> {
    let mut probe = index.clone();
    probe.concurrent = false;
    probe.if_not_exists = false;
    probe.idxname = PROBE_INDEX.to_owned();
    probe.table_space.clear();
    probe.relation = Some(RangeVar {
        schemaname: "pg_temp".to_owned(),
        relname: PROBE_TABLE.to_owned(),
        inh: true,
        relpersistence: "p".to_owned(),
        ..RangeVar::default()
    });
    let create_probe = NodeEnum::IndexStmt(Box::new(probe))
        .deparse(pg_query::DeparseOptions::default())
        .map_err(|error| {
            DriverError::new(
                ErrorKind::Statement,
                format!("could not rewrite the statement for a probe: {error}"),
            )
        })?;
    let probe_sql = format!(
        "BEGIN; SET LOCAL lock_timeout = {}; \
         CREATE TEMPORARY TABLE {PROBE_TABLE} (LIKE {}) ON COMMIT DROP; {create_probe}; \
         SELECT {DEFINITION_TAIL} FROM {INDEX_JOINS} WHERE i.indexrelid = 'pg_temp.{PROBE_INDEX}'::regclass; \
         SELECT ic.relname, i.indisvalid, {DEFINITION_TAIL} FROM {INDEX_JOINS} WHERE i.indrelid = {} ORDER BY 1",
        lock_timeout.as_millis().max(1),
        quoted(table),
        regclass(table),
    );
    let rows = driver.rows(&probe_sql);
    let rolled_back = driver.run("ROLLBACK");
    let rows = rows?;
    rolled_back?;
    let mut rows = rows.into_iter();
    let wanted = rows.next().and_then(|row| row[0].clone()).ok_or_else(|| {
        DriverError::new(ErrorKind::Statement, "the index probe returned nothing")
    })?;
    let existing = rows
        .map(|row| ExistingIndex {
            name: row[0].clone().unwrap_or_default(),
            valid: row[1].as_deref() == Some("t"),
            definition: row[2].clone().unwrap_or_default(),
        })
        .collect();
    Ok((wanted, existing))
}

/// `DROP INDEX CONCURRENTLY`: in effect once the index is gone. One still there (valid, or
/// INVALID from a drop cut off half-way) is dropped by running the statement again.
fn dropped_index(
    driver: &mut PostgresDriver,
    drop: &pg_query::protobuf::DropStmt,
) -> Result<InterruptedOutcome, DriverError> {
    let Some(name) = drop.objects.first().and_then(qualified_name) else {
        return Ok(run_again());
    };
    let row = driver.first_row(&format!(
        "SELECT to_regclass({}) IS NULL",
        literal(Dialect::Postgres, &name.quoted)
    ))?;
    Ok(if row[0].as_deref() == Some("t") {
        InterruptedOutcome::InEffect {
            evidence: format!("index {} no longer exists", name.written),
        }
    } else {
        run_again()
    })
}

/// A dotted name from a `DROP` statement's object list.
struct QualifiedName {
    written: String,
    quoted: String,
}

fn qualified_name(node: &pg_query::protobuf::Node) -> Option<QualifiedName> {
    let Some(NodeEnum::List(list)) = &node.node else {
        return None;
    };
    let parts: Vec<&str> = list
        .items
        .iter()
        .filter_map(|item| match &item.node {
            Some(NodeEnum::String(part)) => Some(part.sval.as_str()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| QualifiedName {
        written: parts.join("."),
        quoted: parts
            .iter()
            .map(|part| escape_identifier(part))
            .collect::<Vec<_>>()
            .join("."),
    })
}

/// `REINDEX … CONCURRENTLY`: cut off, it leaves the copy it was building (`<index>_ccnew`) or
/// the index it replaced (`<index>_ccold`) INVALID; they slow every write down until dropped.
/// Whether the rebuild itself finished cannot be told, and rebuilding again is harmless.
fn reindexed(
    driver: &mut PostgresDriver,
    reindex: &pg_query::protobuf::ReindexStmt,
) -> Result<InterruptedOutcome, DriverError> {
    let concurrently = reindex.params.iter().any(|param| {
        matches!(&param.node, Some(NodeEnum::DefElem(element)) if element.defname == "concurrently")
    });
    if !concurrently {
        return Ok(run_again());
    }
    // Which INVALID `_ccnew`/`_ccold` indexes are this statement's: on the index's table and
    // named after it; on the table (or its TOAST table); in the schema; anywhere.
    let scope = match (reindex.kind(), &reindex.relation) {
        (ReindexObjectType::ReindexObjectIndex, Some(index)) => format!(
            "i.indrelid = (SELECT indrelid FROM pg_index WHERE indexrelid = {index}) \
             AND starts_with((SELECT relname::text FROM pg_class WHERE oid = {index}), substring(ic.relname from '^(.*)_cc(?:new|old)[0-9]*$'))",
            index = regclass(index)
        ),
        (ReindexObjectType::ReindexObjectTable, Some(table)) => format!(
            "(i.indrelid = {table} OR i.indrelid = (SELECT reltoastrelid FROM pg_class WHERE oid = {table}))",
            table = regclass(table)
        ),
        (ReindexObjectType::ReindexObjectSchema, _) => {
            format!("n.nspname = {}", literal(Dialect::Postgres, &reindex.name))
        }
        _ => "true".to_owned(),
    };
    let rows = driver.rows(&format!(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), ic.relname FROM {INDEX_JOINS} \
         WHERE NOT i.indisvalid AND ic.relname ~ '_cc(new|old)[0-9]*$' AND {scope} ORDER BY 2"
    ))?;
    if rows.is_empty() {
        return Ok(InterruptedOutcome::RunAgain {
            note: Some(
                "whether the interrupted REINDEX finished cannot be told, and rebuilding again is harmless"
                    .to_owned(),
            ),
        });
    }
    Ok(InterruptedOutcome::Leftovers(
        rows.into_iter()
            .map(|row| Leftover {
                description: format!(
                    "the INVALID index {} left by an interrupted REINDEX CONCURRENTLY",
                    row[1].clone().unwrap_or_default()
                ),
                drop: format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    row[0].clone().unwrap_or_default()
                ),
            })
            .collect(),
    ))
}

/// `ALTER TABLE parent DETACH PARTITION child CONCURRENTLY`: in effect once `child` is no
/// longer a partition of `parent`; cut off after its first transaction, it leaves the partition
/// "pending detach", which only `DETACH PARTITION … FINALIZE` completes.
fn detached_partition(
    driver: &mut PostgresDriver,
    alter: &pg_query::protobuf::AlterTableStmt,
) -> Result<InterruptedOutcome, DriverError> {
    let partition = alter.cmds.iter().find_map(|cmd| match &cmd.node {
        Some(NodeEnum::AlterTableCmd(cmd))
            if cmd.subtype() == AlterTableType::AtDetachPartition =>
        {
            match cmd.def.as_deref().and_then(|def| def.node.as_ref()) {
                Some(NodeEnum::PartitionCmd(partition)) if partition.concurrent => {
                    partition.name.clone()
                }
                _ => None,
            }
        }
        _ => None,
    });
    let (Some(parent), Some(child)) = (&alter.relation, partition) else {
        return Ok(run_again());
    };
    let row = driver.first_row(&format!(
        "SELECT {parent} IS NOT NULL AND {child} IS NOT NULL, \
         (SELECT CASE WHEN inhdetachpending THEN 'pending' ELSE 'attached' END FROM pg_inherits \
          WHERE inhrelid = {child} AND inhparent = {parent})",
        parent = regclass(parent),
        child = regclass(&child),
    ))?;
    if row[0].as_deref() != Some("t") {
        // A table is missing: the statement fails and says which.
        return Ok(run_again());
    }
    Ok(match row[1].as_deref() {
        None => InterruptedOutcome::InEffect {
            evidence: format!(
                "{} is no longer a partition of {}",
                written(&child),
                written(parent)
            ),
        },
        Some("pending") => InterruptedOutcome::HalfDone {
            evidence: format!(
                "{} is still pending detach from {}",
                written(&child),
                written(parent)
            ),
            finish: format!(
                "ALTER TABLE {} DETACH PARTITION {} FINALIZE",
                quoted(parent),
                quoted(&child)
            ),
        },
        _ => run_again(),
    })
}

/// `CREATE`/`DROP DATABASE` and `TABLESPACE`: in effect when the object exists (`create`) or is
/// gone (`!create`).
fn named_object(
    driver: &mut PostgresDriver,
    kind: &str,
    name: &str,
    create: bool,
) -> Result<InterruptedOutcome, DriverError> {
    let catalog = match kind {
        "database" => "SELECT 1 FROM pg_database WHERE datname = ",
        _ => "SELECT 1 FROM pg_tablespace WHERE spcname = ",
    };
    let exists = !driver
        .rows(&format!("{catalog}{}", literal(Dialect::Postgres, name)))?
        .is_empty();
    Ok(match (create, exists) {
        (true, true) => InterruptedOutcome::InEffect {
            evidence: format!("{kind} {name} exists"),
        },
        (false, false) => InterruptedOutcome::InEffect {
            evidence: format!("{kind} {name} no longer exists"),
        },
        _ => run_again(),
    })
}

/// `COMMIT PREPARED` / `ROLLBACK PREPARED`: in effect once the prepared transaction is gone.
fn prepared_transaction_ended(
    driver: &mut PostgresDriver,
    gid: &str,
) -> Result<InterruptedOutcome, DriverError> {
    let remains = !driver
        .rows(&format!(
            "SELECT 1 FROM pg_prepared_xacts WHERE gid = {}",
            literal(Dialect::Postgres, gid)
        ))?
        .is_empty();
    Ok(if remains {
        run_again()
    } else {
        InterruptedOutcome::InEffect {
            evidence: format!("prepared transaction {gid} no longer exists"),
        }
    })
}
