//! Opening a store location with its environment's own storage settings, so staging
//! and production credentials never mix. Requests time out and retries are bounded, so
//! an unreachable endpoint is an error within seconds, not minutes.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::project::location::{StorageSettings, StoreLocation};
use crate::store::local::LocalFiles;

/// How long a store request may take before it is an error.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An opened store: the object store, the path of the store's root in it, and the URL
/// DataFusion knows it by.
pub struct OpenedStore {
    pub object_store: Arc<dyn ObjectStore>,
    pub root: ObjectPath,
}

/// In-process `memory://NAME` stores, shared by every session of the process.
fn memory_stores() -> &'static Mutex<HashMap<String, Arc<InMemory>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// The settings' values, secrets read from the variables `from_env` names (which must
/// be set).
pub(crate) fn resolved_settings(
    settings: &StorageSettings,
) -> Result<Vec<(String, String)>, String> {
    let mut values: Vec<(String, String)> = settings
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, var) in &settings.from_env {
        let value = std::env::var(var).map_err(|_| {
            format!("storage setting `{key}` is read from the environment variable `{var}`, which is not set")
        })?;
        values.push((key.clone(), value));
    }
    Ok(values)
}

/// Opens a location with its settings. Secrets named in `from_env` must be set.
pub fn open(location: &StoreLocation, settings: &StorageSettings) -> Result<OpenedStore, String> {
    let url = match location {
        StoreLocation::Local(dir) => {
            let root = ObjectPath::from_absolute_path(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            return Ok(OpenedStore {
                object_store: Arc::new(LocalFiles::new()),
                root,
            });
        }
        StoreLocation::Url(url) => url,
    };
    let root =
        ObjectPath::parse(url.path().trim_matches('/')).map_err(|e| format!("{location}: {e}"))?;
    let values = resolved_settings(settings)?;
    let client = ClientOptions::new()
        .with_timeout(DEFAULT_TIMEOUT)
        .with_connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
    };
    let bad = |k: &str, e: object_store::Error| format!("storage setting `{k}`: {e}");
    let object_store: Arc<dyn ObjectStore> = match url.scheme() {
        "memory" => {
            let name = url.host_str().unwrap_or_default().to_string();
            memory_stores()
                .lock()
                .expect("memory stores")
                .entry(name)
                .or_default()
                .clone()
        }
        "s3" | "s3a" => {
            let mut b = AmazonS3Builder::new()
                .with_url(url.as_str())
                .with_client_options(client)
                .with_retry(retry);
            for (k, v) in values {
                b = b.with_config(AmazonS3ConfigKey::from_str(&k).map_err(|e| bad(&k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| format!("{location}: {e}"))?)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::new()
                .with_url(url.as_str())
                .with_client_options(client)
                .with_retry(retry);
            for (k, v) in values {
                b = b.with_config(GoogleConfigKey::from_str(&k).map_err(|e| bad(&k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| format!("{location}: {e}"))?)
        }
        "az" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::new()
                .with_url(url.as_str())
                .with_client_options(client)
                .with_retry(retry);
            for (k, v) in values {
                b = b.with_config(AzureConfigKey::from_str(&k).map_err(|e| bad(&k, e))?, v);
            }
            Arc::new(b.build().map_err(|e| format!("{location}: {e}"))?)
        }
        other => return Err(format!("`{other}://` is not a supported store")),
    };
    Ok(OpenedStore { object_store, root })
}
