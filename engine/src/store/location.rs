//! Where an environment's store lives — a local folder, `file://`, `s3://`, `gs://`,
//! `az://` or `memory://` — and how to open it with the environment's own storage
//! settings, so staging and production credentials never mix.
//!
//! Settings are object_store's configuration keys for the URL's scheme (`endpoint`,
//! `region`, `allow_http`, `timeout`, …); `from_env` names the environment variables
//! secrets are read from. Requests time out and retries are bounded, so an unreachable
//! endpoint is an error within seconds, not minutes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

/// The root of a store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreLocation {
    /// An absolute local folder (written as a path, relative to the project, or `file://`).
    Local(PathBuf),
    /// An object-store URL: `s3://bucket/prefix`, `gs://…`, `az://container/…`, `memory://name`.
    Url(Url),
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local(p) => write!(f, "{}", p.display()),
            StoreLocation::Url(u) => write!(f, "{}", u.as_str().trim_end_matches('/')),
        }
    }
}

/// The storage settings of one environment (`[environments.NAME.storage]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageSettings {
    /// object_store configuration keys and their values.
    pub options: BTreeMap<String, String>,
    /// Configuration keys whose values are read from these environment variables.
    pub from_env: BTreeMap<String, String>,
}

/// How long a store request may take before it is an error, unless the environment
/// sets `timeout` / `connect_timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl StoreLocation {
    /// Parses `data` as written in `sluice.toml`; plain paths are relative to `project_root`.
    pub fn parse(data: &str, project_root: &Path) -> Result<StoreLocation, String> {
        let data = data.trim();
        if data.is_empty() {
            return Err("`data` is empty".into());
        }
        match data.split_once("://") {
            None => {
                let path = Path::new(data);
                Ok(StoreLocation::Local(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    project_root.join(path)
                }))
            }
            Some((scheme, _)) => {
                let url =
                    Url::parse(data).map_err(|e| format!("`{data}` is not a valid URL: {e}"))?;
                match scheme {
                    "file" => url
                        .to_file_path()
                        .map(StoreLocation::Local)
                        .map_err(|_| format!("`{data}` is not an absolute file:// path")),
                    "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "memory" => {
                        if url.host_str().is_none_or(str::is_empty) {
                            return Err(format!(
                                "`{data}` names no {}",
                                if scheme == "memory" {
                                    "store"
                                } else {
                                    "bucket or container"
                                }
                            ));
                        }
                        Ok(StoreLocation::Url(url))
                    }
                    other => Err(format!(
                        "`{other}://` is not a supported store (use a folder, file://, s3://, gs://, az:// or memory://)"
                    )),
                }
            }
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            StoreLocation::Local(_) => "file",
            StoreLocation::Url(u) => u.scheme(),
        }
    }

    /// The local folder, for a local store.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            StoreLocation::Local(p) => Some(p),
            StoreLocation::Url(_) => None,
        }
    }

    /// A location under this one (a branch's store inside its project, say).
    pub fn join(&self, relative: &str) -> StoreLocation {
        match self {
            StoreLocation::Local(p) => StoreLocation::Local(p.join(relative)),
            StoreLocation::Url(u) => {
                let mut u = u.clone();
                let path = format!("{}/{}", u.path().trim_end_matches('/'), relative);
                u.set_path(&path);
                StoreLocation::Url(u)
            }
        }
    }
}

/// Checks that every storage key is one the location's scheme understands.
pub fn validate_settings(
    location: &StoreLocation,
    settings: &StorageSettings,
) -> Result<(), String> {
    for key in settings.options.keys().chain(settings.from_env.keys()) {
        check_key(location.scheme(), key)?;
    }
    Ok(())
}

fn check_key(scheme: &str, key: &str) -> Result<(), String> {
    let ok = match scheme {
        "s3" | "s3a" => AmazonS3ConfigKey::from_str(key).is_ok(),
        "gs" => GoogleConfigKey::from_str(key).is_ok(),
        "az" | "abfs" | "abfss" => AzureConfigKey::from_str(key).is_ok(),
        _ => {
            return Err(format!(
                "storage setting `{key}`: a {scheme} store takes no storage settings"
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "storage setting `{key}` is not a {scheme}:// setting (see object_store's configuration keys, e.g. endpoint, region, access_key_id, allow_http, timeout)"
        ))
    }
}

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
                object_store: Arc::new(LocalFileSystem::new()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        let root = Path::new("/p");
        assert_eq!(
            StoreLocation::parse("data/x", root).unwrap(),
            StoreLocation::Local("/p/data/x".into())
        );
        assert_eq!(
            StoreLocation::parse("file:///abs/x", root).unwrap(),
            StoreLocation::Local("/abs/x".into())
        );
        let s3 = StoreLocation::parse("s3://bucket/prod/", root).unwrap();
        assert_eq!(s3.to_string(), "s3://bucket/prod");
        assert_eq!(s3.join("b").to_string(), "s3://bucket/prod/b");
        assert!(
            StoreLocation::parse("ftp://x/y", root)
                .unwrap_err()
                .contains("not a supported")
        );
        assert!(
            StoreLocation::parse("s3:///x", root)
                .unwrap_err()
                .contains("bucket")
        );
    }

    #[test]
    fn settings_are_checked_per_scheme() {
        let s3 = StoreLocation::parse("s3://b", Path::new("/")).unwrap();
        let mut settings = StorageSettings::default();
        settings
            .options
            .insert("endpoint".into(), "http://127.0.0.1:9000".into());
        settings
            .from_env
            .insert("secret_access_key".into(), "X".into());
        assert!(validate_settings(&s3, &settings).is_ok());
        settings.options.insert("endpont".into(), "x".into());
        assert!(
            validate_settings(&s3, &settings)
                .unwrap_err()
                .contains("endpont")
        );
    }
}
