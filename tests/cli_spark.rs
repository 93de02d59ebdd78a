//! The shipped spark runtime, for real: pyspark from PyPI (it carries Spark's jars) on
//! a local cluster of a head and two workers over SSH, a standalone master and two
//! workers that register with it, and a job submitted on the head that runs on both
//! workers' executors.

mod common;

use common::{need_python_venv, need_sshd, Cleanup, Project};
use std::process::Command;

/// pyspark 3.5.7's sdist on PyPI: pip's hash-checking mode verifies it.
const PYSPARK_SHA256: &str =
    "sha256:80e36514e0c5c126d35a26adf4f405cd4a69de96a8ea8a3c1e9a65fce2fb4eaa";

fn need_java_and_pip() {
    let java = Command::new("java").arg("-version").output();
    assert!(
        java.is_ok_and(|o| o.status.success()),
        "the spark test runs Spark, which needs Java 17: install it with\n  apt-get install openjdk-17-jre-headless\n(.ci/run does this)"
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
fn spark_from_pip_runs_a_submitted_job_on_its_workers() {
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
