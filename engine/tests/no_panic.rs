//! No input may panic tik or overflow its stack: damaged and pathological configurations
//! go through loading, the graph and planning, and must come back as values or errors.

use tik_engine::config::Config;
use tik_engine::plan::{Plan, PlanOptions};
use tik_engine::provider::Providers;
use tik_engine::state::State;
use tik_engine::walk::{InputValue, Inputs};

const RICH: &str = r#"
variable "region" {
  type    = string
  default = "us-west-2"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+-[0-9]$", var.region))
    error_message = "region looks like us-west-2"
  }
}
variable "sizes" {
  type    = object({ head = number, workers = optional(list(number)) })
  default = { head = 1, workers = [1, 2] }
}
locals {
  name   = "analytics-${var.region}"
  cidrs  = [for i in range(3) : cidrsubnet("10.0.0.0/16", 8, i)]
  lookup = { for k, v in { a = 1, b = 2 } : k => v * 2 if v > 0 }
  text   = <<-EOT
    %{ for c in local.cidrs ~}
    net ${c}
    %{ endfor ~}
  EOT
  mixed  = try(jsondecode("{\"a\": [1, 2]}").a[1], 0) + length(split(",", "a,b"))
  fmt    = format("%s-%03d-%v", local.name, 7, true)
}
resource "tik_data" "a" {
  input            = { name = local.name, cidrs = local.cidrs, text = local.text }
  triggers_replace = var.sizes.head
  lifecycle {
    ignore_changes = [input]
  }
}
resource "tik_data" "b" {
  input      = "${tik_data.a.id}-${local.fmt}"
  depends_on = [tik_data.a]
}
resource "tik_data" "c" {
  count = length(local.cidrs)
  input = local.cidrs[count.index]
}
resource "tik_data" "d" {
  for_each = local.lookup
  input    = "${each.key}=${each.value}-${tik_data.c[0].id}"
}
output "b" {
  value     = [tik_data.b.output, tik_data.c[*].id, tik_data.d["a"].output]
  sensitive = false
}
"#;

/// Runs the pipeline without a cloud, a process or a terminal. Any outcome but a panic is fine.
fn pipeline(text: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tik.hcl"), text).unwrap();
    let Ok(config) = Config::load(dir.path()) else {
        return;
    };
    let providers = Providers::new();
    let mut inputs = Inputs::default();
    inputs.values.insert(
        "region".into(),
        InputValue::Raw {
            text: "eu-west-1".into(),
            source: "--var region".into(),
        },
    );
    let _ = plan_of(&config, &providers, inputs);
}

/// A small deterministic generator, so a failure names a case that can be rerun.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn the_rich_configuration_plans() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tik.hcl"), RICH).unwrap();
    let config = Config::load(dir.path())
        .map_err(|(s, d)| d.render(&s))
        .unwrap();
    let p = plan_of(&config, &Providers::new(), Inputs::default())
        .map_err(|d| d.render(&config.sources))
        .unwrap();
    assert_eq!(p.changes.len(), 7);
}

#[test]
fn every_truncation_is_an_error_or_a_plan() {
    let bytes = RICH.as_bytes();
    for end in 0..bytes.len() {
        pipeline(&bytes[..end]);
    }
}

#[test]
fn damaged_bytes_never_panic() {
    let interesting = b"{}[]()\"$%~=.,:?!<>\n#*/\\09a_- \xff\xc3";
    let mut rng = Lcg(7);
    for case in 0..3000 {
        let mut bytes = RICH.as_bytes().to_vec();
        for _ in 0..=(case % 4) {
            let at = (rng.next() as usize) % bytes.len();
            let b = interesting[(rng.next() as usize) % interesting.len()];
            match rng.next() % 3 {
                0 => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        pipeline(&bytes);
    }
}

#[test]
fn pathological_shapes_are_refused_or_evaluated() {
    let n = 20_000;
    let cases = [
        format!("locals {{\n  a = {}1\n}}\n", "1 + ".repeat(n)),
        format!("locals {{\n  a = {}true\n}}\n", "!".repeat(n)),
        format!("locals {{\n  a = {}1\n}}\n", "-".repeat(n)),
        format!("locals {{\n  a = {}0\n}}\n", "true ? 1 : ".repeat(n)),
        format!("locals {{\n  a = x{}\n}}\n", ".b".repeat(n)),
        format!("locals {{\n  a = \"{}\"\n}}\n", "${\"x\"}".repeat(n)),
        format!("locals {{\n  a = {}1{}\n}}\n", "f(".repeat(n), ")".repeat(n)),
        format!("locals {{\n  a = {}1{}\n}}\n", "{a = ".repeat(n), "}".repeat(n)),
        // A chain of locals, each wrapping the previous one in a list: nesting grows past any limit.
        std::iter::once("locals {\n  l0 = 1\n".to_string())
            .chain((1..3000).map(|i| format!("  l{i} = [local.l{}]\n", i - 1)))
            .chain(std::iter::once("}\nresource \"tik_data\" \"x\" {\n  input = local.l2999\n}\n".to_string()))
            .collect(),
        "locals {\n  a = range(1e12)\n  b = format(\"%999999999d\", 1)\n  c = cidrsubnet(\"10.0.0.0/8\", 4294967295, 1)\n}\n".to_string(),
        "locals {\n  a = jsondecode(\"".to_string() + &"[".repeat(5000) + "\")\n}\n",
        "locals {\n  a = [for i in range(100000) : i][99999]\n  b = 1 % 0\n  c = substr(\"é\", -5, 99)\n}\n".to_string(),
    ];
    for case in &cases {
        pipeline(case.as_bytes());
    }
}

/// The plan of an empty state through the one entry point, without refresh.
fn plan_of(
    config: &Config,
    providers: &Providers,
    inputs: Inputs,
) -> Result<Plan, tik_engine::diag::Diagnostics> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(tik_engine::ops::make_plan(
            config,
            providers,
            &State::new("l".into()),
            inputs,
            &PlanOptions::default(),
            false,
        ))
}
