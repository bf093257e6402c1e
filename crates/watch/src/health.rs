//! Health checks after a migration: an HTTP endpoint that must answer 2xx in time, or a SQL
//! probe whose first value must be true.

use std::time::{Duration, Instant};

use serde::Serialize;

use safeshift_driver::{
    ConnectOptions, DatabaseUrl, Engine, MysqlDriver, MysqlFlavor, PostgresDriver, SqliteDriver,
    redact,
};

use crate::query::rows;

/// One check, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheck {
    /// `GET url` must answer with a 2xx status within `timeout`.
    Http { url: String, timeout: Duration },
    /// `query` must return a true first value (true, t, 1, yes, on, or a non-zero number)
    /// within `timeout`.
    Sql { query: String, timeout: Duration },
}

impl HealthCheck {
    /// How the check is shown: the URL (credentials redacted) or the query.
    pub fn describe(&self) -> String {
        match self {
            HealthCheck::Http { url, .. } => format!("GET {}", redact(url)),
            HealthCheck::Sql { query, .. } => format!("SQL {}", query.trim()),
        }
    }
}

/// How a check went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthOutcome {
    pub check: String,
    pub ok: bool,
    /// `HTTP 200`, `true`, or what went wrong.
    pub detail: String,
    pub duration_ms: u64,
}

/// Runs one check; `database` and `options` are used by SQL probes.
pub fn run(check: &HealthCheck, database: &DatabaseUrl, options: &ConnectOptions) -> HealthOutcome {
    let started = Instant::now();
    let (ok, detail) = match check {
        HealthCheck::Http { url, timeout } => http(url, *timeout),
        HealthCheck::Sql { query, timeout } => sql(query, *timeout, database, options),
    };
    HealthOutcome {
        check: check.describe(),
        ok,
        detail: redact(&detail),
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

fn http(url: &str, timeout: Duration) -> (bool, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) => {
            let status = response.status();
            (
                status.is_success(),
                format!(
                    "HTTP {}{}",
                    status.as_u16(),
                    status
                        .canonical_reason()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                ),
            )
        }
        Err(ureq::Error::Timeout(_)) => (false, format!("no answer within {timeout:?}")),
        Err(error) => (false, error.to_string()),
    }
}

fn sql(
    query: &str,
    timeout: Duration,
    database: &DatabaseUrl,
    options: &ConnectOptions,
) -> (bool, String) {
    let value: Result<Option<String>, String> = match database.engine() {
        Engine::Postgres => (|| {
            let mut options = options.clone();
            options.connect_timeout = timeout;
            let mut driver =
                PostgresDriver::connect(database, &options).map_err(|e| e.to_string())?;
            let client = driver.client();
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {}",
                    timeout.as_millis().max(1)
                ))
                .map_err(|e| e.to_string())?;
            let rows = rows(client, query).map_err(|e| e.message)?;
            Ok(rows
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten()))
        })(),
        Engine::Sqlite => (|| {
            let mut options = options.clone();
            options.create = false;
            let driver = SqliteDriver::connect(database, &options).map_err(|e| e.to_string())?;
            let connection = driver.connection();
            connection
                .busy_timeout(timeout)
                .map_err(|e| e.to_string())?;
            connection
                .query_row(query, [], |row| {
                    Ok(match row.get_ref(0)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Text(v) | rusqlite::types::ValueRef::Blob(v) => {
                            Some(String::from_utf8_lossy(v).into_owned())
                        }
                    })
                })
                .or_else(|error| match error {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    other => Err(other.to_string()),
                })
        })(),
        Engine::Mysql => (|| {
            let mut options = options.clone();
            options.connect_timeout = timeout;
            let mut driver = MysqlDriver::connect(database, &options).map_err(|e| e.to_string())?;
            let limit = match driver.flavor() {
                MysqlFlavor::Mariadb => format!(
                    "SET SESSION max_statement_time = {}",
                    timeout.as_secs_f64().max(0.001)
                ),
                MysqlFlavor::Mysql => format!(
                    "SET SESSION max_execution_time = {}",
                    timeout.as_millis().max(1)
                ),
            };
            driver.query_rows(&limit).map_err(|e| e.message)?;
            let rows = driver.query_rows(query).map_err(|e| e.message)?;
            Ok(rows
                .into_iter()
                .next()
                .and_then(|row| row.into_iter().next().flatten()))
        })(),
    };
    match value {
        Ok(value) => {
            let ok = truthy(value.as_deref());
            (
                ok,
                match value {
                    Some(value) => format!("returned {value}"),
                    None => "returned no value".to_owned(),
                },
            )
        }
        Err(error) => (false, error),
    }
}

/// Whether a probe's first value counts as true.
pub fn truthy(value: Option<&str>) -> bool {
    let Some(value) = value.map(str::trim) else {
        return false;
    };
    match value.to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "on" | "y" => true,
        "f" | "false" | "no" | "off" | "n" | "" => false,
        other => other.parse::<f64>().is_ok_and(|n| n != 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness() {
        for value in ["t", "true", "1", "42", "yes", "0.5"] {
            assert!(truthy(Some(value)), "{value}");
        }
        for value in ["f", "false", "0", "", "no", "0.0", "maybe"] {
            assert!(!truthy(Some(value)), "{value}");
        }
        assert!(!truthy(None));
    }

    #[test]
    fn an_unreachable_endpoint_fails_quickly_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let (ok, detail) = http(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(2),
        );
        assert!(!ok);
        assert!(!detail.is_empty());
    }

    #[test]
    fn a_status_outside_2xx_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        let url = format!("http://127.0.0.1:{port}/health");
        assert_eq!(
            http(&url, Duration::from_secs(5)),
            (false, "HTTP 503 Service Unavailable".to_owned())
        );
        assert_eq!(
            http(&url, Duration::from_secs(5)),
            (true, "HTTP 200 OK".to_owned())
        );
        server.join().unwrap();
    }
}
