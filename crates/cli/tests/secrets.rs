//! Secrets stay secret: a hook is never handed the database password (whatever variable the
//! configuration read it from), and `init --url` with a password does not leave it in a file
//! others can read.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Project, Run, exit};
use safeshift_testkit::TestDatabase;

const PASSWORD: &str = "pw-3b9f1c7e-never-shown";

/// The test database's URL with a password in it (the test server trusts every local login, so
/// the password is carried along and ignored, as a real one would be checked).
fn url_with_password(db: &TestDatabase) -> String {
    let url = db
        .url()
        .replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(url.contains(PASSWORD), "{url}");
    url
}

/// The environment every hook of an `--env staging` run saw, one `NAME=value` line each.
fn hook_environments(project: &Project) -> String {
    ["before-env.txt", "after-env.txt"]
        .iter()
        .map(|name| {
            std::fs::read_to_string(project.path().join(name))
                .unwrap_or_else(|e| panic!("the hook wrote no {name}: {e}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn staging_project(environment_url: &str, database_url: &str) -> Project {
    // The command line gets no --database-url: the URL comes from the configuration.
    let project = Project::postgres(String::new());
    project.migration(
        "0001_accounts.sql",
        "CREATE TABLE accounts (id bigint PRIMARY KEY);",
        "DROP TABLE accounts;",
    );
    std::fs::write(
        project.path().join("safeshift.toml"),
        format!(
            "[database]\nurl = \"{database_url}\"\n\n\
             [environments.staging]\nurl = \"{environment_url}\"\n\
             [environments.staging.hooks]\n\
             before = [[\"sh\", \"-c\", \"env > before-env.txt\"]]\n\
             after = [[\"sh\", \"-c\", \"env > after-env.txt\"]]\n"
        ),
    )
    .unwrap();
    project
}

/// `Project::command` passes `--database-url`; these tests read the URL from the configuration.
fn run_configured(project: &Project, variables: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = std::process::Command::new(common::safeshift_bin());
    command.current_dir(project.path()).args(args);
    for variable in [
        "DATABASE_URL",
        "SAFESHIFT_DATABASE_URL",
        "PGPASSWORD",
        "SAFESHIFT_ENV",
    ] {
        command.env_remove(variable);
    }
    command.env("NO_COLOR", "1");
    for (name, value) in variables {
        command.env(name, value);
    }
    Run::from(command.output().expect("run safeshift"))
}

#[test]
fn hooks_never_receive_the_password_the_configuration_read_from_a_variable() {
    let db = TestDatabase::new();
    let url = url_with_password(&db);
    let project = staging_project(
        "${STAGING_DB_URL}",
        "postgres://postgres:${APP_DB_PASSWORD}@127.0.0.1/unused",
    );
    let run = run_configured(
        &project,
        &[
            ("STAGING_DB_URL", url.as_str()),
            ("APP_DB_PASSWORD", PASSWORD),
            ("UNRELATED_SETTING", "kept"),
        ],
        &["--env", "staging", "up", "--yes"],
    );
    run.expect(exit::OK);
    let seen = hook_environments(&project);
    assert!(
        !seen.contains(PASSWORD),
        "a hook received the password:\n{seen}"
    );
    for name in ["STAGING_DB_URL=", "APP_DB_PASSWORD="] {
        assert!(
            !seen.lines().any(|line| line.starts_with(name)),
            "a hook received {name}"
        );
    }
    assert!(
        seen.lines().any(|line| line == "UNRELATED_SETTING=kept"),
        "other variables still reach hooks:\n{seen}"
    );
    assert!(
        seen.lines()
            .any(|line| line.starts_with("SAFESHIFT_DATABASE=") && line.contains("***")),
        "hooks get the redacted URL:\n{seen}"
    );
    assert!(!run.all().contains(PASSWORD));
}

#[test]
fn init_with_a_password_in_the_url_keeps_it_out_of_the_configuration_file() {
    let db = TestDatabase::new();
    let url = url_with_password(&db);
    let project = Project::postgres(String::new());
    let init = run_configured(&project, &[], &["init", "--url", &url]);
    init.expect(exit::OK);
    assert!(!init.all().contains(PASSWORD), "{}", init.all());
    let config_path = project.path().join("safeshift.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(!config.contains(PASSWORD), "{config}");
    assert!(config.contains("url = \"${DATABASE_URL}\""), "{config}");
    let mode = std::fs::metadata(&config_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "safeshift.toml is readable by others");
    let said = init.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("DATABASE_URL") && said.contains("password"),
        "init tells where the secret goes:\n{}",
        init.stdout
    );
    assert!(
        said.contains("created the history table"),
        "init still reached the database:\n{}",
        init.stdout
    );
    // With the secret where init said, the project works.
    run_configured(&project, &[("DATABASE_URL", url.as_str())], &["up"]).expect(exit::OK);
}

#[test]
fn init_without_a_password_writes_the_url_as_given() {
    let db = TestDatabase::new();
    let project = Project::postgres(String::new());
    run_configured(&project, &[], &["init", "--url", &db.url()]).expect(exit::OK);
    let config = std::fs::read_to_string(project.path().join("safeshift.toml")).unwrap();
    assert!(
        config.contains(&format!("url = \"{}\"", db.url())),
        "{config}"
    );
    run_configured(&project, &[], &["status"]).expect(exit::OK);
}
