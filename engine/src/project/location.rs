//! Where an environment's store lives — a local folder, `file://`, `s3://`, `gs://`,
//! `az://` or `memory://` — and the storage settings it is opened with, as written in
//! `sluice.toml` and checked when the project loads (`store::open` opens it).
//!
//! Settings are object_store's configuration keys for the URL's scheme (`endpoint`,
//! `region`, `allow_http`, `timeout`, …); `from_env` names the environment variables
//! secrets are read from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
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
                let path = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    project_root.join(path)
                };
                // `../shared/data` and `./x` name the folder they lead to: object paths
                // have no `..`, so it is resolved here, by the text of the path.
                Ok(StoreLocation::Local(normalize(&path)))
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

/// `path` with `.` and `..` resolved by its text (symbolic links are not followed; see
/// `StoreLocation::canonical` for the comparison of two stores).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl StoreLocation {
    /// The location as compared with another: a local folder with its existing part
    /// resolved through symbolic links; a URL as scheme, bucket and prefix.
    pub fn canonical(&self) -> String {
        match self {
            StoreLocation::Local(p) => {
                // Resolve the longest prefix that exists, then append the rest.
                let mut existing = p.clone();
                let mut tail = Vec::new();
                loop {
                    if let Ok(real) = existing.canonicalize() {
                        let mut out = real;
                        for t in tail.iter().rev() {
                            out.push(t);
                        }
                        return format!("file://{}/", normalize(&out).display());
                    }
                    match (
                        existing.file_name().map(|n| n.to_os_string()),
                        existing.parent(),
                    ) {
                        (Some(name), Some(parent)) => {
                            tail.push(name);
                            existing = parent.to_path_buf();
                        }
                        _ => return format!("file://{}/", p.display()),
                    }
                }
            }
            StoreLocation::Url(u) => {
                let scheme = match u.scheme() {
                    "s3a" => "s3",
                    "abfs" | "abfss" => "az",
                    s => s,
                };
                format!(
                    "{scheme}://{}/{}",
                    u.host_str().unwrap_or_default(),
                    u.path()
                        .trim_matches('/')
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(|s| format!("{s}/"))
                        .collect::<String>()
                )
            }
        }
    }

    /// Whether one of the two stores lies inside the other (or they are the same): two
    /// environments sharing objects would write over each other's data.
    pub fn overlaps(&self, other: &StoreLocation) -> bool {
        let (a, b) = (self.canonical(), other.canonical());
        a.starts_with(&b) || b.starts_with(&a)
    }

    /// Whether `other` lies inside this store (or is it).
    pub fn contains(&self, other: &StoreLocation) -> bool {
        other.canonical().starts_with(&self.canonical())
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
        assert_eq!(
            StoreLocation::parse("../shared/./data", root).unwrap(),
            StoreLocation::Local("/shared/data".into())
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
    fn overlapping_stores() {
        let root = Path::new("/p");
        let at = |s: &str| StoreLocation::parse(s, root).unwrap();
        assert!(at("data/production").overlaps(&at("./data/production/")));
        assert!(at("data").overlaps(&at("data/production")));
        assert!(at("data/production").overlaps(&at("data")));
        assert!(!at("data/production").overlaps(&at("data/production2")));
        assert!(!at("data/staging").overlaps(&at("data/production")));
        assert!(at("s3://b/prod").overlaps(&at("s3a://b/prod/x")));
        assert!(!at("s3://b/prod").overlaps(&at("s3://b/production")));
        assert!(!at("s3://b/prod").overlaps(&at("gs://b/prod")));
        assert!(at("data").contains(&at("data/x")));
        assert!(!at("data/x").contains(&at("data")));
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
