//! The postgres runtime's default install, run for real: upstream's source archive,
//! fetched from a mirror by its published sha256 and built on the node. PostgreSQL's
//! own servers are out of this machine's reach, so the archive is Debian's copy of
//! it (the `.orig` of the distribution's PostgreSQL, which is upstream's archive),
//! checked against Debian's signed description and served from loopback in
//! upstream's layout. Alone in its file: the build takes both cores for minutes.

use crate::common::{need_postgres, need_sshd, postgres_config, postgres_project, psql, Mirror};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "built 'from' source";

/// A directory laid out as upstream's mirror (`source/vV/postgresql-V.tar.gz` and
/// its `.sha256`) holding the source of the distribution's PostgreSQL `major`, and
/// its version. Fetched once into the build's temp dir.
fn upstream_source(major: &str) -> (String, PathBuf) {
    let package = format!("postgresql-{major}");
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", &package])
        .output();
    let debian = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => panic!(
            "this test builds the source of the distribution's PostgreSQL and cannot read {package}'s version with dpkg-query: it needs Debian's {package} (apt-get install postgresql; tests/run does this)"
        ),
    };
    // 1:15.18-0+deb12u1 → 15.18
    let without_epoch = debian.split_once(':').map_or(debian.as_str(), |(_, v)| v);
    let version = without_epoch
        .rsplit_once('-')
        .map_or(without_epoch, |(v, _)| v)
        .to_string();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("postgres-mirror");
    let dir = root.join(format!("source/v{version}"));
    let archive = format!("postgresql-{version}.tar.gz");
    if dir.join(format!("{archive}.sha256")).exists() {
        return (version, root);
    }
    std::fs::create_dir_all(&dir).unwrap();
    // The description (.dsc) names the original archive and its sha256; the archive
    // is checked against it, then packed as upstream publishes it, with the digest
    // file in sha256sum's layout beside it.
    let fetch = r#"set -eu
package=$1 debian=$2 version=$3 dir=$4 archive=$5
cd "$dir"
for pool in https://deb.debian.org/debian/pool/main https://deb.debian.org/debian-security/pool/updates/main; do
  base="$pool/p/$package"
  curl -fsS -o debian.dsc "$base/${package}_${debian#*:}.dsc" 2>/dev/null && break
  base=""
done
[ -n "$base" ] || { echo "no ${package}_$debian.dsc in Debian's pools"; exit 1; }
set -- $(awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on && $3 ~ /\.orig\.tar\./ { print $1, $3 }' debian.dsc)
[ $# -eq 2 ] || { echo "debian.dsc names no original archive"; exit 1; }
curl -fsS -o "$2" "$base/$2"
echo "$1  $2" | sha256sum -c --quiet
case "$2" in
  *.bz2) bzip2 -dc "$2" ;;
  *.xz) xz -dc "$2" ;;
  *.gz) gzip -dc "$2" ;;
esac | gzip -1 >"$archive.part"
mv "$archive.part" "$archive"
rm -f "$2" debian.dsc
sha256sum "$archive" >"$archive.sha256.part"
mv "$archive.sha256.part" "$archive.sha256"
"#;
    let out = Command::new("sh")
        .args(["-c", fetch, "sh", &package, &debian, &version])
        .arg(&dir)
        .arg(&archive)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "cannot fetch PostgreSQL {version}'s source from Debian's archive (curl, sha256sum and bzip2 are needed): {}{}\nPut upstream's {archive} and its {archive}.sha256 in {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dir.display()
    );
    (version, root)
}

#[test]
fn postgres_built_from_upstreams_source_serves_its_database() {
    need_sshd();
    let (major, bin) = need_postgres();
    for (tool, package) in [("cc", "gcc"), ("make", "make")] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "this test builds PostgreSQL and {tool} is missing: install it with\n  apt-get install {package}\n(tests/run does this)"
        );
    }
    let (version, root) = upstream_source(&major);
    let mirror = Mirror::start(&root);
    let p = postgres_project(&postgres_config(
        0,
        &format!("version = \"{version}\"\n    mirror  = \"{}\"", mirror.url),
    ));
    let env = [("TIK_VAR_password", PASSWORD)];
    let home = p.file(".tik/local/workspaces/lab/clusters/db/head/home/postgres");

    let r = p.tik_env(&["apply", "--auto-approve"], &env);
    assert_eq!(
        r.code,
        0,
        "{}\nthe build's log:\n{}",
        r.out(),
        std::fs::read_to_string(home.join("build.log")).unwrap_or_default()
    );
    // The server answering is the one built here: the distribution's says
    // "PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on ...".
    let url: String = serde_json::from_str(&p.ok(&["output", "--json", "url"], 0).stdout).unwrap();
    let built = psql(&bin, &url, PASSWORD, "select version()").unwrap();
    assert!(
        built.starts_with(&format!("PostgreSQL {version} on ")),
        "{built}"
    );
    assert_eq!(
        std::fs::read_link(home.join("bin")).unwrap(),
        home.join(format!("postgresql-{version}/bin"))
    );
    assert!(
        !home.join(format!("src-{version}")).exists(),
        "the build's sources are removed"
    );
    psql(
        &bin,
        &url,
        PASSWORD,
        "create table kept (x int); insert into kept values (7)",
    )
    .unwrap();
    assert_eq!(
        psql(&bin, &url, PASSWORD, "select x from kept").as_deref(),
        Ok("7")
    );
    // Built once: the next plan has nothing to do.
    let r = p.tik_env(&["plan", "--detailed-exitcode"], &env);
    assert_eq!(r.code, 0, "{}", r.out());

    let r = p.tik_env(&["destroy", "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.out());
    assert!(
        psql(&bin, &url, PASSWORD, "select 1").is_err(),
        "the server stopped"
    );
}
