//! Rehearsing small migration projects on the shared test server.
#![allow(dead_code)]

use safeshift_driver::DatabaseUrl;
use safeshift_rehearse::{
    MigrationReport, Predictions, RehearsalOptions, RehearsalReport, ServerChoice, SnapshotScope,
};

/// A project of native migrations (`(file name, up, down)`; an empty down means none).
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(migrations: &[(&str, &str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        for (name, up, down) in migrations {
            let text = if down.is_empty() {
                format!("-- migrate:up\n{up}\n")
            } else {
                format!("-- migrate:up\n{up}\n\n-- migrate:down\n{down}\n")
            };
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Project { dir }
    }

    pub fn set(&self) -> safeshift_source::MigrationSet {
        safeshift_source::MigrationSet::load(self.dir.path()).unwrap()
    }
}

/// Options that rehearse on the shared test server (a database is created per rehearsal).
pub fn options() -> RehearsalOptions {
    let server = safeshift_testkit::shared_server();
    RehearsalOptions {
        server: ServerChoice::Existing(DatabaseUrl::parse(&server.admin_url()).unwrap()),
        from_database: None,
        applied: Default::default(),
        rows: None,
        expectations: None,
        strict: false,
        predictions: Predictions::default(),
        scope: SnapshotScope::default(),
        keep_going: false,
        thresholds: Default::default(),
    }
}

pub fn rehearse_with(
    migrations: &[(&str, &str, &str)],
    options: &RehearsalOptions,
) -> RehearsalReport {
    let project = Project::new(migrations);
    safeshift_rehearse::rehearse(&project.set(), options, &mut |_| {}).unwrap()
}

pub fn rehearse(migrations: &[(&str, &str, &str)]) -> RehearsalReport {
    rehearse_with(migrations, &options())
}

/// The report of the migration with this version.
pub fn migration<'a>(report: &'a RehearsalReport, version: &str) -> &'a MigrationReport {
    report
        .migrations
        .iter()
        .find(|m| m.version == version)
        .unwrap_or_else(|| panic!("no migration {version} in {report:#?}"))
}
