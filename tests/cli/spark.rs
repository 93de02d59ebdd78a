//! The shipped spark runtime, for real: pyspark from PyPI (it carries Spark's jars) on
//! a local cluster of a head and two workers over SSH, a standalone master and two
//! workers that register with it, and a job submitted on the head that runs on both
//! workers' executors. Then the same Spark from an archive in Apache's release layout
//! (served from loopback with its published .sha512), as install_method = "archive"
//! installs it: a changed install reinstalls and restarts every node.

use crate::common::{checksum_line, need_python_venv, need_sshd, Cleanup, Mirror, Project};
use std::process::Command;

/// pyspark 3.5.7's sdist on PyPI: pip's hash-checking mode verifies it.
pub(crate) const PYSPARK_SHA256: &str =
    "sha256:80e36514e0c5c126d35a26adf4f405cd4a69de96a8ea8a3c1e9a65fce2fb4eaa";

pub(crate) fn need_java_and_pip() {
    let java = Command::new("java").arg("-version").output();
    assert!(
        java.is_ok_and(|o| o.status.success()),
        "the spark test runs Spark, which needs Java 17: install it with\n  apt-get install openjdk-17-jre-headless\n(tests/run does this)"
    );
    need_python_venv();
}

const CONFIG: &str = r#"workspace "lab" {
  provider  = "local"
  transport = "ssh"
}

cluster "spark" {
  workspace = workspace.lab
  head {}
  workers "w" {
    min = 2
    max = 2
  }
  runtime "spark" {
    install_method = "pip"
    checksum       = "CHECKSUM"
  }
}

output "master" { value = cluster.spark.runtime.spark.endpoint.master_url }
output "workers" { value = [for w in cluster.spark.node.worker["w"] : w.private_ip] }
"#;

/// A PySpark job: Python tasks (squares), a SQL aggregate in the JVM, and the address
/// of the node each of 24 tasks ran on.
const JOB: &str = r#"cat >job.py <<'EOF'
import os
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("tik-test").getOrCreate()
sc = spark.sparkContext
squares = sc.parallelize(range(1, 101), 6).map(lambda x: x * x).sum()
total = spark.range(1, 1000001).selectExpr("sum(id) AS s").first()["s"]
where = sc.parallelize(range(24), 24).map(lambda _: os.environ.get("SPARK_LOCAL_IP", "?"))
print("RESULT", squares, total, " ".join(sorted(set(where.collect()))))
spark.stop()
EOF
spark/current/bin/spark-submit job.py 2>job.err || { tail -40 job.err; exit 1; }"#;

fn pids(p: &Project) -> Vec<String> {
    let base = ".tik/local/workspaces/lab/clusters/spark";
    [
        format!("{base}/head/home/spark/master.pid"),
        format!("{base}/worker-w-0/home/spark/worker.pid"),
        format!("{base}/worker-w-1/home/spark/worker.pid"),
    ]
    .iter()
    .map(|f| p.read(f).trim().to_string())
    .collect()
}

#[test]
fn spark_from_pip_and_from_apaches_archive_runs_jobs_on_its_workers() {
    need_sshd();
    need_java_and_pip();
    let p = Cleanup(Project::new(&[(
        "main.tik.hcl",
        &CONFIG.replace("CHECKSUM", PYSPARK_SHA256),
    )]));
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("Apply complete!"), "{}", r.out());
    let master = p.ok(&["output", "--raw", "master"], 0).stdout;
    assert!(master.starts_with("spark://127."), "{master}");

    // The master is alive and lists both workers (the workers' health checks ask it).
    let status = p.ok(&["status", "spark"], 0).stdout;
    assert!(status.contains("3 of 3 services well."), "{status}");

    let job = p.ok(&["exec", "spark", "--node", "head", "--", JOB], 0);
    let workers: Vec<String> =
        serde_json::from_str(&p.ok(&["output", "--json", "workers"], 0).stdout).unwrap();
    let mut want_where = workers.clone();
    want_where.sort();
    let result = job
        .stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("the job printed no result:\n{}", job.out()));
    assert_eq!(
        result,
        format!("RESULT 338350 500000500000 {}", want_where.join(" ")),
        "the job's result, and the workers its tasks ran on"
    );

    // Spark from Apache's archive: the head's pyspark, packed as Apache packs a
    // release (spark-V/spark-V-bin-hadoop3.tgz, its sha512 beside it). Its conf/ is
    // the node's own (install links it), so it is left out, as the release has only
    // templates there.
    let pyspark = std::fs::canonicalize(
        p.file(".tik/local/workspaces/lab/clusters/spark/head/home/spark/current"),
    )
    .unwrap();
    let dist = p.file("mirror/spark/spark-3.5.7");
    std::fs::create_dir_all(&dist).unwrap();
    let archive = "spark-3.5.7-bin-hadoop3.tgz";
    let tar = Command::new("tar")
        .args(["-czf"])
        .arg(dist.join(archive))
        .args([
            "--exclude=./conf",
            "--transform=s,^\\.,spark-3.5.7-bin-hadoop3,",
            "-C",
        ])
        .arg(&pyspark)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(tar.success());
    std::fs::write(
        dist.join(format!("{archive}.sha512")),
        checksum_line("sha512", &dist, archive),
    )
    .unwrap();
    let mirror = Mirror::start(&p.file("mirror"));
    p.write(
        "main.tik.hcl",
        &CONFIG.replace("\"pip\"", "\"archive\"").replace(
            "\"CHECKSUM\"",
            &format!("\"\"\n    mirror = \"{}\"", mirror.url),
        ),
    );
    let plan = p.ok(&["plan", "--no-color", "--verbose"], 0).stdout;
    for node in ["head", "worker[\"w\"][0]", "worker[\"w\"][1]"] {
        assert!(
            plan.contains(&format!("cluster.spark.node.{node}.runtime.spark.service.")),
            "{plan}"
        );
    }
    let before = pids(&p);
    let r = p.ok(&["apply", "--auto-approve"], 0);
    assert!(r.stdout.contains("Apply complete!"), "{}", r.out());
    let status = p.ok(&["status", "spark"], 0).stdout;
    assert!(status.contains("3 of 3 services well."), "{status}");
    let installed = std::fs::canonicalize(
        p.file(".tik/local/workspaces/lab/clusters/spark/head/home/spark/current"),
    )
    .unwrap();
    assert!(installed.ends_with("spark/spark-3.5.7"), "{installed:?}");
    let after = pids(&p);
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old, new, "a reinstalled node's daemon was restarted");
    }
    // A job in the JVM alone (the release has no Python driver here): Spark SQL from
    // the unpacked release, on the master and its workers.
    let sql = p.ok(
        &[
            "exec",
            "spark",
            "--node",
            "head",
            "--",
            &format!(
                "mkdir -p sql && cd sql && ../spark/current/bin/spark-sql --master {} -e 'SELECT sum(id) FROM range(1, 1000001)' 2>sql.err || {{ tail -40 sql.err; exit 1; }}",
                master.trim()
            ),
        ],
        0,
    );
    assert!(
        sql.stdout.lines().any(|l| l.trim() == "500000500000"),
        "{}",
        sql.out()
    );

    // Destroy stops the master and the workers.
    let daemons = pids(&p);
    p.ok(&["destroy", "--auto-approve"], 0);
    for pid in daemons {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "Spark daemon {pid} still runs after destroy"
        );
    }
}
