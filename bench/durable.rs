//! The durable-write limit of this disk, for `bench/bench.py`'s POST scenario: how many creations
//! per second can be acknowledged *after they are on disk*, with no HTTP, no TLS, no auth, no JSON.
//!
//! The simplest fast way to do it: CLIENTS threads each hand one creation at a time to ONE writer
//! thread and wait for its acknowledgement (as a client waits for 201); the writer takes whatever
//! is waiting (up to 128), writes it as one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`
//! (one commit, one fsync: WAL, `synchronous=FULL`, as the service), and only then acknowledges
//! each row. The table is the service's own (its migrations, triggers included), in a fresh file.
//!
//! The same creations: each reference is drawn at random from as many as bench.py's POST body file
//! has lines ([`REFERENCES`]), since oha sends that file's lines in random order. That decides how
//! the `reference` index is written: a random key lands on a random leaf page (about one page
//! written per row), an ascending one on the same last page. A reference drawn twice is refused
//! (`ON CONFLICT DO NOTHING`), as the service's 409, and is not counted as created.
//!
//! cargo run --release --example durable -- DB_FILE MIGRATIONS_DIR CLIENTS SECONDS
//!
//! Prints one JSON object: created per second, latency p50/p99 in ms (of created rows), commits,
//! rows per commit (refused ones included), refused.

use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params_from_iter};

/// How many different references bench.py's POST body file holds (one per line).
const REFERENCES: u64 = 1_500_000;

/// Rows per statement, as the service's group commit on PostgreSQL (`store/deliveries/creator.rs`).
const MAX_BATCH: usize = 128;

struct Creation {
    reference: String,
    done: mpsc::SyncSender<bool>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, migrations, clients, seconds] = &args[..] else {
        eprintln!("usage: durable DB_FILE MIGRATIONS_DIR CLIENTS SECONDS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS: a number");
    let duration = Duration::from_secs_f64(seconds.parse().expect("SECONDS: a number"));
    let conn = open(db, migrations);

    let (queue, pending) = mpsc::channel::<Creation>();
    let writer = std::thread::spawn(move || write_batches(&conn, &pending));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let (done, acked) = mpsc::sync_channel(1);
                // xorshift64*, seeded per client: oha's random choice of lines, reproducibly.
                let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ (client as u64 + 1);
                let mut draw = move || {
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    state.wrapping_mul(0x2545_F491_4F6C_DD1D) % REFERENCES
                };
                let mut refused = 0u64;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let reference = format!("P-{}", draw());
                    queue
                        .send(Creation {
                            reference,
                            done: done.clone(),
                        })
                        .expect("writer");
                    if acked.recv().expect("writer") {
                        latencies.push(sent.elapsed());
                    } else {
                        refused += 1; // drawn before: the service's 409
                    }
                }
                (latencies, refused)
            })
        })
        .collect();
    drop(queue);
    let mut latencies: Vec<Duration> = Vec::new();
    let mut refused = 0;
    for worker in workers {
        let (mine, theirs) = worker.join().expect("client");
        latencies.extend(mine);
        refused += theirs;
    }
    let elapsed = started.elapsed();
    let commits = writer.join().expect("writer");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{{\"created_per_sec\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"commits\": {}, \
         \"rows_per_commit\": {:.2}, \"refused\": {}}}",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
        commits,
        (latencies.len() as u64 + refused) as f64 / commits.max(1) as f64,
        refused
    );
}

/// A fresh database with the service's schema, set up as the service sets up its own.
fn open(db: &str, migrations: &str) -> Connection {
    let conn = Connection::open(db).expect("database file");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    let mut files: Vec<_> = std::fs::read_dir(migrations)
        .expect("migrations directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        conn.execute_batch(&std::fs::read_to_string(&file).expect("migration"))
            .expect("migration runs");
    }
    conn
}

/// The one writer: every waiting creation in one statement, one commit; returns the commits made.
fn write_batches(conn: &Connection, pending: &mpsc::Receiver<Creation>) -> u64 {
    let mut commits = 0;
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let values = vec!["(?, 'Bench', '1 Post Road', 'pending')"; batch.len()].join(", ");
        let sql = format!(
            "INSERT INTO deliveries (reference, recipient, address, status) VALUES {values} \
             ON CONFLICT (reference) DO NOTHING RETURNING id, reference"
        );
        let mut insert = conn.prepare_cached(&sql).expect("statement");
        let refs = batch.iter().map(|c| c.reference.as_str());
        let created: HashSet<String> = insert
            .query_map(params_from_iter(refs), |row| row.get(1))
            .expect("insert")
            .collect::<Result<_, _>>()
            .expect("rows");
        commits += 1;
        for creation in batch {
            let ok = created.contains(creation.reference.as_str());
            let _ = creation.done.send(ok);
        }
    }
    commits
}
