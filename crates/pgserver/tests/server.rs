//! Starting throwaway servers with a layout, settings and a template of one's own.

use std::sync::atomic::{AtomicUsize, Ordering};

use safeshift_pgserver::{Layout, PgBinaries, PgServer, ServerOptions, TemplateSetup};

static PREPARED: AtomicUsize = AtomicUsize::new(0);

fn create_marker_database(admin_url: &str) -> Result<(), String> {
    PREPARED.fetch_add(1, Ordering::SeqCst);
    let mut client =
        postgres::Client::connect(admin_url, postgres::NoTls).map_err(|e| e.to_string())?;
    client
        .batch_execute("CREATE DATABASE prepared_once")
        .map_err(|e| e.to_string())
}

fn scratch_layout(name: &str) -> (std::path::PathBuf, Layout) {
    let root =
        std::env::temp_dir().join(format!("safeshift-pgserver-{name}-{}", std::process::id()));
    let layout = Layout::at(root.clone()).unwrap();
    (root, layout)
}

#[test]
fn servers_share_a_prepared_template_and_take_extra_settings() {
    let (root, layout) = scratch_layout("template");
    let mut options = ServerOptions::new(layout, PgBinaries::find(Some(15)).unwrap());
    options.settings = vec!["max_connections=17".to_owned()];
    options.template = Some(TemplateSetup {
        name: "marker",
        prepare: create_marker_database,
    });
    let first = PgServer::start(&options).unwrap();
    let second = PgServer::start(&options).unwrap();
    assert_eq!(
        PREPARED.load(Ordering::SeqCst),
        1,
        "the template is prepared once"
    );
    for server in [&first, &second] {
        let mut client = postgres::Client::connect(&server.url("prepared_once"), postgres::NoTls)
            .expect("the prepared database exists on every copy");
        let max: String = client
            .query_one("SELECT current_setting('max_connections')", &[])
            .unwrap()
            .get(0);
        assert_eq!(max, "17");
        let fsync: String = client
            .query_one("SELECT current_setting('fsync')", &[])
            .unwrap()
            .get(0);
        assert_eq!(fsync, "off");
    }
    assert!(
        first.bin_dir().join("pg_dump").exists(),
        "links are followed to the real bin dir"
    );
    let base_dir = first.base_dir().to_path_buf();
    drop(first);
    drop(second);
    assert!(!base_dir.exists());
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_directory_without_binaries_is_an_error_that_names_it() {
    let error = PgBinaries::in_dir(std::path::Path::new("/nonexistent/bin")).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/bin/postgres"),
        "{error}"
    );
}

#[test]
fn client_programs_are_found_for_the_server_version() {
    let binaries = PgBinaries::find(Some(15)).unwrap();
    let major = binaries.major_version().unwrap();
    let pg_dump =
        safeshift_pgserver::find_client_program("pg_dump", major, Some(binaries.dir())).unwrap();
    assert_eq!(pg_dump, binaries.dir().join("pg_dump"));
    let too_new = safeshift_pgserver::find_client_program("pg_dump", 99, None).unwrap_err();
    assert!(
        too_new.to_string().contains("pg_dump 99 or newer"),
        "{too_new}"
    );
}
