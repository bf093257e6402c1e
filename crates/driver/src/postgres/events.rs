//! The run-events log on PostgreSQL (see `crate::events`).

use postgres_protocol::escape::escape_identifier;

use super::PostgresDriver;
use crate::Dialect;
use crate::error::DriverError;
use crate::events::{EventRecord, EventsSql, NewEvent, parse_event};
use crate::history_sql::literal;

impl PostgresDriver {
    fn events_sql(&self) -> (EventsSql, String) {
        let table = format!(
            "{}.{}",
            self.quoted_schema,
            escape_identifier(&format!("{}_events", self.location.table))
        );
        (EventsSql::new(Dialect::Postgres, table.clone()), table)
    }

    fn events_exist(&mut self, quoted_table: &str) -> Result<bool, DriverError> {
        let row = self.first_row(&format!(
            "SELECT to_regclass({}) IS NOT NULL",
            literal(Dialect::Postgres, quoted_table)
        ))?;
        Ok(row[0].as_deref() == Some("t"))
    }

    pub(super) fn ensure_event_table(&mut self) -> Result<(), DriverError> {
        let (sql, table) = self.events_sql();
        if !self.events_exist(&table)? {
            let create = format!("{}{}", self.create_schema_sql()?, sql.create_table());
            // Two runners creating it at once: the loser's error is harmless if the table exists.
            if let Err(error) = self.run(&create)
                && !self.events_exist(&table)?
            {
                return Err(error);
            }
        }
        Ok(())
    }

    pub(super) fn append_event_row(&mut self, event: &NewEvent) -> Result<i64, DriverError> {
        self.ensure_event_table()?;
        let (sql, _) = self.events_sql();
        let user = self.server.user.clone();
        let row = self.first_row(&sql.insert(event, &user))?;
        Ok(row[0]
            .as_deref()
            .and_then(|id| id.parse().ok())
            .unwrap_or_default())
    }

    pub(super) fn read_event_rows(&mut self) -> Result<Vec<EventRecord>, DriverError> {
        let (sql, table) = self.events_sql();
        if !self.events_exist(&table)? {
            return Ok(Vec::new());
        }
        self.rows(&sql.select_all())?
            .iter()
            .map(|row| parse_event(row))
            .collect()
    }
}
