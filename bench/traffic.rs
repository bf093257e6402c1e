//! The traffic-impact benchmark behind `bench/traffic.sh`: how much a schema change hurts an
//! application that keeps running, done the naive way and safeshift's way.
//!
//! It starts its own throwaway PostgreSQL server, loads `pgbench_accounts` with N rows, and for
//! each scenario runs a rate-limited pgbench read/write workload with prepared statements
//! (latency counted from each transaction's scheduled start, so a stall shows as latency, not as
//! fewer transactions), waits for a baseline, runs the migration, and compares the workload
//! before and during it. A sampler reads `pg_locks.waitstart` of the workload's sessions every
//! 100 ms; the server logs every lock wait over 100 ms (`log_lock_waits`). The physical limit is
//! the naive backfill with no traffic at all.
//!
//! ```text
//! cargo run --release -p safeshift-bench --bin traffic -- --safeshift target/release/safeshift
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use safeshift_pgserver::{Layout, PgBinaries, ServerOptions, database_url};

const USAGE: &str =
    "usage: traffic --safeshift PATH [--rows N] [--rate TPS] [--clients N] [--repeat N]
               [--baseline SECONDS] [--scenarios a,b,…] [--out DIR]
scenarios: backfill, index, constraints, type, lock-queue (default: all)";

/// Server settings: the table stays cached, no forced checkpoint in the window, every lock wait
/// over 100 ms logged, durability as in production.
const SETTINGS: &[&str] = &[
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "shared_buffers=1GB",
    "max_wal_size=8GB",
    "checkpoint_timeout=15min",
    "log_lock_waits=on",
    "deadlock_timeout=100ms",
    "max_connections=100",
];

/// A point read and a point write on the migrated table (no branch-row hot spot).
const WORKLOAD: &str = "\\set aid random(1, 100000 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
END;
";

struct Args {
    safeshift: PathBuf,
    rows: u64,
    rate: u32,
    clients: u32,
    repeat: u32,
    baseline: f64,
    scenarios: Vec<String>,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        safeshift: PathBuf::new(),
        rows: 2_000_000,
        rate: 500,
        clients: 4,
        repeat: 1,
        baseline: 15.0,
        scenarios: ["backfill", "index", "constraints", "type", "lock-queue"]
            .map(String::from)
            .to_vec(),
        out: PathBuf::from("bench/out/traffic"),
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or(format!("{word} needs a value"));
        let number = |text: String| {
            text.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{text}: {e}"))
        };
        match word.as_str() {
            "--safeshift" => args.safeshift = PathBuf::from(value()?),
            "--rows" => args.rows = number(value()?)?,
            "--rate" => args.rate = number(value()?)? as u32,
            "--clients" => args.clients = number(value()?)? as u32,
            "--repeat" => args.repeat = number(value()?)?.max(1) as u32,
            "--baseline" => args.baseline = number(value()?)? as f64,
            "--scenarios" => args.scenarios = value()?.split(',').map(String::from).collect(),
            "--out" => args.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.safeshift.as_os_str().is_empty() {
        return Err("--safeshift is required".into());
    }
    if args.rows < 100_000 || !args.rows.is_multiple_of(100_000) {
        return Err("--rows must be a multiple of 100000 (pgbench's scale)".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("traffic: {message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&args) {
        eprintln!("traffic: {message}");
        std::process::exit(1);
    }
}

/// The server, stopped when dropped.
struct Server {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = safeshift_pgserver::stop_detached(&self.dir);
    }
}

impl Server {
    fn url(&self, database: &str) -> String {
        database_url(self.port, database)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres");
        command
    }

    /// Runs SQL with psql, failing on error.
    fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = self
            .tool("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "psql {sql}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

fn run(args: &Args) -> Result<(), String> {
    let out = std::path::absolute(&args.out).map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let binaries = PgBinaries::find(Some(15)).map_err(|e| e.to_string())?;
    // On disk (not a RAM file system), so commits pay for their WAL flush as in production.
    let layout = match std::env::var_os("SAFESHIFT_BENCH_SERVER_DIR") {
        Some(dir) => Layout::at(PathBuf::from(dir)),
        None => Layout::at(out.join("server")),
    }
    .map_err(|e| e.to_string())?;
    let mut options = ServerOptions::new(layout, binaries.clone());
    options.settings = SETTINGS.iter().map(|s| (*s).to_owned()).collect();
    let started = safeshift_pgserver::start_detached(&options, None).map_err(|e| e.to_string())?;
    let server = Server {
        dir: started.base_dir,
        port: started.port,
        bin: binaries.dir().to_path_buf(),
    };
    let scale = args.rows / 100_000;
    println!(
        "traffic benchmark: PostgreSQL {} on port {}, {} rows (pgbench scale {scale}), {} tps offered by {} clients, {} cpus, load {}",
        binaries.version(),
        server.port,
        args.rows,
        args.rate,
        args.clients,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_average()
    );
    server.psql("postgres", "CREATE DATABASE bench_template")?;
    let init = server
        .tool("pgbench")
        .args(["-i", "-q", "-s", &scale.to_string(), "bench_template"])
        .output()
        .map_err(|e| format!("pgbench -i: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "pgbench -i: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    server.psql("bench_template", "VACUUM ANALYZE")?;
    fs::write(out.join("workload.sql"), WORKLOAD).map_err(|e| e.to_string())?;

    // The physical limit: the naive backfill with nothing else running.
    let mut limits = Vec::new();
    for _ in 0..args.repeat.max(3) {
        reset(&server)?;
        server.psql(
            "bench",
            "ALTER TABLE pgbench_accounts ADD COLUMN new_bal bigint",
        )?;
        let started = Instant::now();
        server.psql("bench", "UPDATE pgbench_accounts SET new_bal = abalance")?;
        limits.push(started.elapsed().as_secs_f64());
    }
    let limit = median(&mut limits.clone());
    println!(
        "physical limit (naive backfill, no traffic): {} s median of {:?} ({} rows/s)",
        round(limit, 2),
        limits.iter().map(|l| round(*l, 2)).collect::<Vec<_>>(),
        (args.rows as f64 / limit) as u64
    );

    let mut results: Vec<RunResult> = Vec::new();
    for scenario in &args.scenarios {
        for variant in [Variant::Naive, Variant::Safeshift] {
            for repetition in 1..=args.repeat {
                let result =
                    run_scenario(&server, args, &out, scenario, variant, repetition, limit)?;
                println!("{}", result.line());
                results.push(result);
            }
        }
    }
    println!();
    println!("{}", summary_table(&results, args, limit));
    Ok(())
}

fn reset(server: &Server) -> Result<(), String> {
    server.psql("postgres", "DROP DATABASE IF EXISTS bench WITH (FORCE)")?;
    server.psql("postgres", "CREATE DATABASE bench TEMPLATE bench_template")?;
    server.psql(
        "bench",
        "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey'); CHECKPOINT",
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Naive,
    Safeshift,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Safeshift => "safeshift",
        }
    }
}

/// What to run for a scenario: SQL for psql (naive), or a migration file for safeshift.
fn migration(scenario: &str, variant: Variant) -> Result<String, String> {
    Ok(match (scenario, variant) {
        ("backfill", Variant::Naive) => {
            "ALTER TABLE pgbench_accounts ADD COLUMN new_bal bigint; UPDATE pgbench_accounts SET new_bal = abalance;".into()
        }
        ("backfill", Variant::Safeshift) => "-- migrate:up transaction:false
ALTER TABLE pgbench_accounts ADD COLUMN new_bal bigint;
-- safeshift:backfill
UPDATE pgbench_accounts SET new_bal = abalance;
-- migrate:down
ALTER TABLE pgbench_accounts DROP COLUMN new_bal;
"
        .into(),
        ("index", Variant::Naive) => "CREATE INDEX accounts_abalance_idx ON pgbench_accounts (abalance);".into(),
        ("index", Variant::Safeshift) => "-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY accounts_abalance_idx ON pgbench_accounts (abalance);
-- migrate:down transaction:false
DROP INDEX CONCURRENTLY accounts_abalance_idx;
"
        .into(),
        ("constraints", Variant::Naive) => "ALTER TABLE pgbench_accounts ALTER COLUMN bid SET NOT NULL; \
             ALTER TABLE pgbench_accounts ADD CONSTRAINT accounts_bid_fkey FOREIGN KEY (bid) REFERENCES pgbench_branches (bid);"
            .into(),
        ("constraints", Variant::Safeshift) => "-- migrate:up transaction:false
ALTER TABLE pgbench_accounts ADD CONSTRAINT accounts_bid_not_null CHECK (bid IS NOT NULL) NOT VALID;
ALTER TABLE pgbench_accounts VALIDATE CONSTRAINT accounts_bid_not_null;
ALTER TABLE pgbench_accounts ALTER COLUMN bid SET NOT NULL;
ALTER TABLE pgbench_accounts DROP CONSTRAINT accounts_bid_not_null;
ALTER TABLE pgbench_accounts ADD CONSTRAINT accounts_bid_fkey FOREIGN KEY (bid) REFERENCES pgbench_branches (bid) NOT VALID;
ALTER TABLE pgbench_accounts VALIDATE CONSTRAINT accounts_bid_fkey;
-- migrate:down
ALTER TABLE pgbench_accounts DROP CONSTRAINT accounts_bid_fkey;
ALTER TABLE pgbench_accounts ALTER COLUMN bid DROP NOT NULL;
"
        .into(),
        ("type", Variant::Naive) => "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint;".into(),
        // Written by `safeshift new --change-type` before the run.
        ("type", Variant::Safeshift) => String::new(),
        ("lock-queue", Variant::Naive) => "ALTER TABLE pgbench_accounts ADD COLUMN note text;".into(),
        ("lock-queue", Variant::Safeshift) => "-- migrate:up
ALTER TABLE pgbench_accounts ADD COLUMN note text;
-- migrate:down
ALTER TABLE pgbench_accounts DROP COLUMN note;
"
        .into(),
        (other, _) => return Err(format!("unknown scenario {other}")),
    })
}

/// Timestamped samples of the workload's longest current lock wait.
#[derive(Default)]
struct Samples {
    waits: Vec<(f64, f64)>,
    pgbench_pids: HashSet<i64>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn start_sampler(
    url: String,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) else {
            return;
        };
        while !stop.load(Ordering::SeqCst) {
            let at = now_epoch();
            if let Ok(messages) = client.simple_query(
                "SELECT coalesce((SELECT extract(epoch FROM max(clock_timestamp() - l.waitstart)) FROM pg_locks l \
                   JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.application_name = 'pgbench'), 0), \
                   coalesce((SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'), '')",
            ) {
                for message in messages {
                    if let postgres::SimpleQueryMessage::Row(row) = message {
                        let wait: f64 = row.get(0).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                        let mut samples = samples.lock().unwrap();
                        samples.waits.push((at, wait));
                        for pid in row.get(1).unwrap_or("").split(',').filter_map(|p| p.parse().ok()) {
                            samples.pgbench_pids.insert(pid);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[derive(Debug, Clone)]
struct RunResult {
    scenario: String,
    variant: Variant,
    repetition: u32,
    ok: bool,
    wall: f64,
    tps_before: f64,
    tps_during: f64,
    worst_second: f64,
    p50_before: f64,
    p99_before: f64,
    p50_during: f64,
    p99_during: f64,
    max_during: f64,
    max_after: f64,
    lock_wait_sampled: f64,
    lock_wait_logged: f64,
    errors: u64,
    load: (String, String),
    note: String,
}

impl RunResult {
    fn line(&self) -> String {
        format!(
            "{:<11} {:<9} #{} {} wall {:>6.2}s  tps {:>5.0} → {:>5.0} (worst 1s {:>4.0})  p50 {:>6.1} → {:>7.1} ms  p99 {:>6.1} → {:>7.1} ms  max {:>7.0} ms (after {:>5.0})  lock wait {:>6.0} ms sampled / {:>6.0} ms logged  errors {}  load {} → {}{}",
            self.scenario,
            self.variant.name(),
            self.repetition,
            if self.ok { "ok  " } else { "FAIL" },
            self.wall,
            self.tps_before,
            self.tps_during,
            self.worst_second,
            self.p50_before,
            self.p50_during,
            self.p99_before,
            self.p99_during,
            self.max_during,
            self.max_after,
            self.lock_wait_sampled,
            self.lock_wait_logged,
            self.errors,
            self.load.0,
            self.load.1,
            if self.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", self.note)
            }
        )
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

#[allow(clippy::too_many_arguments)]
fn run_scenario(
    server: &Server,
    args: &Args,
    out: &Path,
    scenario: &str,
    variant: Variant,
    repetition: u32,
    limit: f64,
) -> Result<RunResult, String> {
    reset(server)?;
    let run_dir = out.join(format!("{scenario}-{}-{repetition}", variant.name()));
    fs::create_dir_all(run_dir.join("migrations")).map_err(|e| e.to_string())?;
    let url = server.url("bench");
    let sql = migration(scenario, variant)?;
    let mut up_to: Option<String> = None;
    if variant == Variant::Safeshift {
        if scenario == "type" {
            let output = Command::new(&args.safeshift)
                .args(["-u", &url, "-d"])
                .arg(run_dir.join("migrations"))
                .args([
                    "new",
                    "--change-type",
                    "pgbench_accounts.abalance",
                    "bigint",
                ])
                .output()
                .map_err(|e| format!("safeshift new: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "safeshift new: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            up_to = fs::read_dir(run_dir.join("migrations"))
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains("_expand_"))
                .map(|name| name.split('_').next().unwrap_or_default().to_owned())
                .next();
        } else {
            fs::write(
                run_dir
                    .join("migrations")
                    .join(format!("0001_{scenario}.sql")),
                &sql,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    // Long enough for the baseline, the slowest migration and the backlog drain.
    let expected = match scenario {
        "backfill" | "type" => 3.0 * limit,
        "lock-queue" => 12.0,
        _ => limit,
    };
    let duration = (args.baseline + expected + 10.0).ceil() as u64;
    let log_offset = fs::metadata(server.log()).map(|m| m.len()).unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let sampler = start_sampler(server.url("bench"), Arc::clone(&stop), Arc::clone(&samples));
    let load_before = load_average();
    let threads = args.clients.clamp(1, 2);
    let mut pgbench = server
        .tool("pgbench")
        .current_dir(&run_dir)
        .args(["-n", "-M", "prepared", "-f"])
        .arg(out.join("workload.sql"))
        .args([
            "-c",
            &args.clients.to_string(),
            "-j",
            &threads.to_string(),
            "-R",
            &args.rate.to_string(),
            "-T",
            &duration.to_string(),
            "-l",
            "--log-prefix=pgb",
            "bench",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("pgbench: {e}"))?;
    let pgbench_started = now_epoch();
    std::thread::sleep(Duration::from_secs_f64(args.baseline));
    let reader = (scenario == "lock-queue").then(|| {
        let url = server.url("bench");
        let handle = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = client.batch_execute(
                    "BEGIN; SELECT count(*) FROM pgbench_accounts WHERE aid < 10; SELECT pg_sleep(10); COMMIT",
                );
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        handle
    });
    let migration_start = now_epoch();
    let output = match variant {
        Variant::Naive => server
            .tool("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-d", "bench", "-c", &sql])
            .output(),
        Variant::Safeshift => {
            let mut command = Command::new(&args.safeshift);
            command
                .args(["-u", &url, "-d"])
                .arg(run_dir.join("migrations"))
                .args(["up", "--allow-risk", "high"]);
            if let Some(version) = &up_to {
                command.args(["--to", version]);
            }
            command.output()
        }
    }
    .map_err(|e| format!("running the migration: {e}"))?;
    let migration_end = now_epoch();
    fs::write(
        run_dir.join("migration.log"),
        [
            output.stdout.as_slice(),
            b"\n--- stderr\n",
            output.stderr.as_slice(),
        ]
        .concat(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    let mut pgbench_stdout = String::new();
    let mut pgbench_stderr = String::new();
    if let Some(mut stream) = pgbench.stdout.take() {
        let _ = stream.read_to_string(&mut pgbench_stdout);
    }
    if let Some(mut stream) = pgbench.stderr.take() {
        let _ = stream.read_to_string(&mut pgbench_stderr);
    }
    let _ = pgbench.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let load_after = load_average();
    fs::write(
        run_dir.join("pgbench.out"),
        format!("{pgbench_stdout}\n--- stderr\n{pgbench_stderr}"),
    )
    .map_err(|e| e.to_string())?;

    let transactions = read_pgbench_logs(&run_dir)?;
    let samples = samples.lock().unwrap();
    let logged = logged_lock_waits(&server.log(), log_offset, &samples.pgbench_pids);
    let sampled = samples
        .waits
        .iter()
        .filter(|(at, _)| *at >= migration_start - 0.2 && *at <= migration_end + 2.0)
        .map(|(_, wait)| *wait * 1000.0)
        .fold(0.0, f64::max);
    let mut result = analyse(
        &transactions,
        pgbench_started,
        migration_start,
        migration_end,
        pgbench_started + duration as f64,
    );
    result.scenario = scenario.to_owned();
    result.variant = variant;
    result.repetition = repetition;
    result.ok = output.status.success();
    result.lock_wait_sampled = sampled;
    result.lock_wait_logged = logged;
    result.errors = pgbench_errors(&pgbench_stdout, &pgbench_stderr);
    result.load = (load_before, load_after);
    if migration_end > pgbench_started + duration as f64 - 3.0 {
        result.note = "the migration outlasted the workload window".into();
    }
    if !result.ok {
        let text = String::from_utf8_lossy(&output.stderr);
        result.note = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(2)
            .collect::<Vec<_>>()
            .join(" / ");
    }
    Ok(result)
}

/// One transaction: completion time (epoch seconds) and latency (seconds, from the scheduled
/// start, schedule lag included).
struct Transaction {
    done: f64,
    latency: f64,
}

fn read_pgbench_logs(dir: &Path) -> Result<Vec<Transaction>, String> {
    let mut transactions = Vec::new();
    for entry in fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
    {
        if !entry.file_name().to_string_lossy().starts_with("pgb.") {
            continue;
        }
        let file = fs::File::open(entry.path()).map_err(|e| e.to_string())?;
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // client tx latency_us script epoch_s epoch_us lag_us
            if fields.len() < 6 {
                continue;
            }
            let (Ok(latency), Ok(seconds), Ok(micros)) = (
                fields[2].parse::<f64>(),
                fields[4].parse::<f64>(),
                fields[5].parse::<f64>(),
            ) else {
                continue;
            };
            transactions.push(Transaction {
                done: seconds + micros / 1e6,
                latency: latency / 1e6,
            });
        }
    }
    Ok(transactions)
}

fn analyse(
    transactions: &[Transaction],
    started: f64,
    migration_start: f64,
    migration_end: f64,
    end: f64,
) -> RunResult {
    let before_from = started + 3.0;
    let completed = |from: f64, to: f64| {
        transactions
            .iter()
            .filter(|t| t.done >= from && t.done < to)
            .count() as f64
    };
    let scheduled = |from: f64, to: f64| -> Vec<f64> {
        let mut latencies: Vec<f64> = transactions
            .iter()
            .filter(|t| {
                let start = t.done - t.latency;
                start >= from && start < to
            })
            .map(|t| t.latency * 1000.0)
            .collect();
        latencies.sort_by(|a, b| a.total_cmp(b));
        latencies
    };
    let during_length = (migration_end - migration_start).max(0.001);
    // Whole seconds from the migration's start; at least the first one, so a migration shorter
    // than a second still shows what the second it began in delivered.
    let mut worst_second = f64::INFINITY;
    let mut second = migration_start;
    loop {
        worst_second = worst_second.min(completed(second, second + 1.0));
        second += 1.0;
        if second + 1.0 > migration_end {
            break;
        }
    }
    let before = scheduled(before_from, migration_start);
    let during = scheduled(migration_start, migration_end);
    let after = scheduled(migration_end, end);
    RunResult {
        scenario: String::new(),
        variant: Variant::Naive,
        repetition: 0,
        ok: false,
        wall: migration_end - migration_start,
        tps_before: completed(before_from, migration_start) / (migration_start - before_from),
        tps_during: completed(migration_start, migration_end) / during_length,
        worst_second: if worst_second.is_finite() {
            worst_second
        } else {
            f64::NAN
        },
        p50_before: percentile(&before, 0.50),
        p99_before: percentile(&before, 0.99),
        p50_during: percentile(&during, 0.50),
        p99_during: percentile(&during, 0.99),
        max_during: during.last().copied().unwrap_or(0.0),
        max_after: after.last().copied().unwrap_or(0.0),
        lock_wait_sampled: 0.0,
        lock_wait_logged: 0.0,
        errors: 0,
        load: (String::new(), String::new()),
        note: String::new(),
    }
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

/// The longest lock wait of a workload session in the server log since `offset`: `process N
/// acquired … after X ms`, or `still waiting … after X ms` for a wait that ended otherwise.
fn logged_lock_waits(log: &Path, offset: u64, pids: &HashSet<i64>) -> f64 {
    let Ok(mut file) = fs::File::open(log) else {
        return 0.0;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return 0.0;
    }
    let mut longest: f64 = 0.0;
    for line in BufReader::new(file).lines().map_while(Result::ok) {
        let Some(rest) = line.split("process ").nth(1) else {
            continue;
        };
        let pid: i64 = rest
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(-1);
        if !pids.contains(&pid)
            || !(line.contains(" acquired ") || line.contains(" still waiting "))
        {
            continue;
        }
        if let Some(ms) = line.rsplit(" after ").next().and_then(|tail| {
            tail.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse::<f64>()
                .ok()
        }) {
            longest = longest.max(ms);
        }
    }
    longest
}

/// Failed transactions and aborted clients pgbench reported.
fn pgbench_errors(stdout: &str, stderr: &str) -> u64 {
    let failed: u64 = stdout
        .lines()
        .find(|line| line.starts_with("number of failed transactions"))
        .and_then(|line| line.split(':').nth(1))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let aborted = stderr
        .lines()
        .filter(|line| line.contains("aborted"))
        .count() as u64;
    failed + aborted
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

/// Medians per scenario and variant, and whether safeshift's way met the targets.
fn summary_table(results: &[RunResult], args: &Args, limit: f64) -> String {
    let mut groups: BTreeMap<(String, &'static str), Vec<&RunResult>> = BTreeMap::new();
    for result in results {
        groups
            .entry((result.scenario.clone(), result.variant.name()))
            .or_default()
            .push(result);
    }
    let mut lines = vec![
        format!(
            "| scenario | variant | runs ok | wall s | rows/s | tps before → during | worst 1 s tps | p50 ms before → during | p99 ms before → during | max ms during (after) | longest client lock wait ms (sampled / logged) | client errors | targets |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for scenario in &args.scenarios {
        for variant in ["naive", "safeshift"] {
            let Some(runs) = groups.get(&(scenario.clone(), variant)) else {
                continue;
            };
            let med = |f: &dyn Fn(&RunResult) -> f64| {
                let mut values: Vec<f64> = runs.iter().map(|r| f(r)).collect();
                median(&mut values)
            };
            let wall = med(&|r| r.wall);
            let rows_per_second = if scenario == "backfill" {
                format!("{}", (args.rows as f64 / wall) as u64)
            } else {
                "–".into()
            };
            let tps_before = med(&|r| r.tps_before);
            let tps_during = med(&|r| r.tps_during);
            let lock_sampled = med(&|r| r.lock_wait_sampled);
            let lock_logged = med(&|r| r.lock_wait_logged);
            let errors = runs.iter().map(|r| r.errors).max().unwrap_or(0);
            let targets = if variant == "safeshift" {
                let mut misses = Vec::new();
                if tps_during < 0.9 * tps_before {
                    misses.push("throughput");
                }
                if lock_sampled.max(lock_logged) > 250.0 {
                    misses.push("lock wait");
                }
                if errors > 0 {
                    misses.push("errors");
                }
                if scenario == "backfill" && wall > 1.5 * limit {
                    misses.push("wall time");
                }
                if runs.iter().any(|r| !r.ok) {
                    misses.push("migration failed");
                }
                if misses.is_empty() {
                    "met".to_owned()
                } else {
                    format!("missed: {}", misses.join(", "))
                }
            } else {
                String::new()
            };
            lines.push(format!(
                "| {scenario} | {variant} | {}/{} | {:.2} | {rows_per_second} | {:.0} → {:.0} | {:.0} | {:.1} → {:.1} | {:.1} → {:.1} | {:.0} ({:.0}) | {:.0} / {:.0} | {errors} | {targets} |",
                runs.iter().filter(|r| r.ok).count(),
                runs.len(),
                wall,
                tps_before,
                tps_during,
                med(&|r| r.worst_second),
                med(&|r| r.p50_before),
                med(&|r| r.p50_during),
                med(&|r| r.p99_before),
                med(&|r| r.p99_during),
                med(&|r| r.max_during),
                med(&|r| r.max_after),
                lock_sampled,
                lock_logged,
            ));
        }
    }
    lines.push(format!(
        "\nphysical limit: {:.2} s for the naive backfill of {} rows with no traffic; targets for safeshift's way: tps during ≥ 90 % of before, no client lock wait over 250 ms, no client error, backfill wall time ≤ 1.5 × the physical limit ({:.2} s)",
        limit,
        args.rows,
        1.5 * limit
    ));
    lines.join("\n")
}
