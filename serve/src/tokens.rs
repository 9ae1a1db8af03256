//! Access tokens of one environment. A token is shown once, when it is created; the
//! store keeps only its SHA-256 (`_sluice/tokens.json`), with its name, scope and the
//! pipes it may call. Tokens live in the environment's own store and carry its name,
//! so a staging token is never valid in production.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sluice_engine::error::{Result, SluiceError};
use sluice_engine::store::Store;

pub use sluice_engine::project::system_tables::TOKENS_FILE;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Call endpoint pipes (all, or those listed).
    Read,
    /// Everything `read` may, on every pipe, and `/v0/sql`.
    Admin,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        })
    }
}

/// A token as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub env: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
    pub scope: Scope,
    /// The pipes a `read` token may call; empty: every endpoint.
    #[serde(default)]
    pub pipes: Vec<String>,
    pub created_at: String,
}

impl TokenRecord {
    /// Whether this token may call `pipe`.
    pub fn may_call(&self, pipe: &str) -> bool {
        self.scope == Scope::Admin || self.pipes.is_empty() || self.pipes.iter().any(|p| p == pipe)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The environment a token was made for, read off its text (`sluice_<env>_<secret>`).
pub fn token_env(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("sluice_")?;
    let (env, secret) = rest.rsplit_once('_')?;
    (!env.is_empty() && secret.len() == 40).then_some(env)
}

/// The tokens of one environment's store.
pub struct TokenStore {
    store: Arc<Store>,
}

impl TokenStore {
    pub fn new(store: Arc<Store>) -> TokenStore {
        TokenStore { store }
    }

    async fn read(&self) -> Result<TokenFile> {
        match self.store.get(TOKENS_FILE).await? {
            None => Ok(TokenFile::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| SluiceError::State {
                env: self.store.env().to_string(),
                message: format!(
                    "{} is not a token file: {e}",
                    self.store.describe(TOKENS_FILE)
                ),
            }),
        }
    }

    async fn write(&self, file: &TokenFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(file).expect("tokens serialize");
        self.store.put(TOKENS_FILE, Bytes::from(bytes)).await
    }

    pub async fn list(&self) -> Result<Vec<TokenRecord>> {
        Ok(self.read().await?.tokens)
    }

    /// Creates a token and returns its text (shown once) and its record. Names are
    /// unique within the environment; `pipes` must name endpoint pipes (checked by
    /// the caller, which knows the project).
    pub async fn create(
        &self,
        name: &str,
        scope: Scope,
        pipes: Vec<String>,
    ) -> Result<(String, TokenRecord)> {
        let env = self.store.env().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(SluiceError::Usage(format!(
                "token name `{name}`: use letters, digits, `_`, `-` or `.`"
            )));
        }
        // Changes to the token file are serialized by the environment's lock.
        let _lock =
            sluice_engine::store::deployments::DeploymentState::in_store(self.store.clone())
                .lock("sluice token")
                .await?;
        let mut file = self.read().await?;
        if file.tokens.iter().any(|t| t.name == name) {
            return Err(SluiceError::Usage(format!(
                "environment `{env}` already has a token named `{name}` (revoke it first: `sluice token revoke {name} --env {env}`)"
            )));
        }
        let mut secret = [0u8; 20];
        getrandom::fill(&mut secret).map_err(|e| SluiceError::State {
            env: env.clone(),
            message: format!("no randomness for a token: {e}"),
        })?;
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("sluice_{env}_{secret}");
        let record = TokenRecord {
            name: name.to_string(),
            env: env.clone(),
            hash: hash_token(&token),
            scope,
            pipes,
            created_at: sluice_engine::util::clock::now(),
        };
        file.tokens.push(record.clone());
        self.write(&file).await?;
        Ok((token, record))
    }

    /// Removes a token; an unknown name is an error.
    pub async fn revoke(&self, name: &str) -> Result<TokenRecord> {
        // Changes to the token file are serialized by the environment's lock.
        let _lock =
            sluice_engine::store::deployments::DeploymentState::in_store(self.store.clone())
                .lock("sluice token")
                .await?;
        let mut file = self.read().await?;
        let Some(i) = file.tokens.iter().position(|t| t.name == name) else {
            let known: Vec<&str> = file.tokens.iter().map(|t| t.name.as_str()).collect();
            return Err(SluiceError::Usage(format!(
                "environment `{}` has no token named `{name}` (known: {})",
                self.store.env(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let record = file.tokens.remove(i);
        self.write(&file).await?;
        Ok(record)
    }

    /// The record of a token's text among `records` (this environment's), if any: a
    /// server verifies against the records it keeps, without reading the store.
    pub fn find<'a>(&self, records: &'a [TokenRecord], token: &str) -> Option<&'a TokenRecord> {
        let hash = hash_token(token);
        let env = self.store.env();
        records.iter().find(|t| t.hash == hash && t.env == env)
    }

    /// The record of a token's text in this environment, if it is one of its tokens.
    pub async fn verify(&self, token: &str) -> Result<Option<TokenRecord>> {
        let hash = hash_token(token);
        let env = self.store.env();
        Ok(self
            .read()
            .await?
            .tokens
            .into_iter()
            .find(|t| t.hash == hash && t.env == env))
    }
}
