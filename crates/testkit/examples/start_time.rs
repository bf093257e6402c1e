//! Measures how long `PgServer::start` takes (the template cluster is built first, untimed).
//!
//! `cargo run --release -p safeshift-testkit --example start_time -- 9`

use std::time::Instant;

use safeshift_testkit::PgServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(7), |n| n.parse())?;
    drop(PgServer::start()?);
    let mut start_times = Vec::with_capacity(runs);
    let mut stop_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let server = PgServer::start()?;
        start_times.push(started.elapsed());
        let mut client = server.connect("postgres")?;
        client.simple_query("SELECT 1")?;
        let stopping = Instant::now();
        drop(server);
        stop_times.push(stopping.elapsed());
    }
    start_times.sort();
    stop_times.sort();
    println!(
        "start: median {:?}, min {:?}, max {:?} over {runs} runs; stop: median {:?}",
        start_times[runs / 2],
        start_times[0],
        start_times[runs - 1],
        stop_times[runs / 2]
    );
    Ok(())
}
