//! SDK clients, one set per (region, endpoint), built from the standard AWS chain:
//! environment, profile, SSO, instance role, and the `AWS_ENDPOINT_URL` variables.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts API operations (not retries), in all and by operation, for tests and the benchmark.
#[derive(Debug, Default, Clone)]
pub struct CallCounter {
    total: Arc<AtomicU64>,
    by_operation: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl CallCounter {
    pub fn get(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn by_operation(&self) -> std::collections::BTreeMap<String, u64> {
        self.by_operation
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "tik-call-counter"
    }

    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("unknown", |m| m.name())
            .to_string();
        if let Ok(mut m) = self.by_operation.lock() {
            *m.entry(name).or_default() += 1;
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
}

/// Where a resource's API is: its region, and an endpoint when one is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub region: String,
    pub endpoint: Option<String>,
}

#[derive(Default)]
pub struct ClientCache {
    clients: tokio::sync::Mutex<HashMap<Target, Clients>>,
    pub calls: CallCounter,
}

impl ClientCache {
    pub async fn get(&self, target: &Target) -> Clients {
        let mut cache = self.clients.lock().await;
        if let Some(c) = cache.get(target) {
            return c.clone();
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(target.region.clone()))
            // Throttling is retried with exponential backoff and jitter.
            .retry_config(RetryConfig::standard().with_max_attempts(8));
        if let Some(endpoint) = &target.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let ec2 = aws_sdk_ec2::config::Builder::from(&shared)
            .interceptor(self.calls.clone())
            .retry_classifier(crate::compute::CapacityIsFinal)
            .build();
        let iam = aws_sdk_iam::config::Builder::from(&shared)
            .interceptor(self.calls.clone())
            .build();
        // Buckets by path, not by host name, where an endpoint is given (moto, MinIO, ...).
        let s3 = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(target.endpoint.is_some())
            .interceptor(self.calls.clone())
            .build();
        let clients = Clients {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            iam: aws_sdk_iam::Client::from_conf(iam),
            s3: aws_sdk_s3::Client::from_conf(s3),
        };
        cache.insert(target.clone(), clients.clone());
        clients
    }
}
