//! Who may see the console: the same tokens as the API, admin scope only. A browser
//! cannot send a bearer header from a link, so a token given once (as `?token=` or by
//! the sign-in form) is kept in an HttpOnly, SameSite=Strict cookie and the browser is
//! sent on to the URL without it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::layout::{PageError, sign_in};
use super::{Console, PREFIX};
use crate::tokens::Scope;

/// Lets a request through with an admin token of the console's environment (from the
/// `Authorization` header, the query or the cookie), or without one where anonymous
/// reads are allowed; else a sign-in page (401) or a refusal (403).
pub async fn require_admin(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let uri = req.uri().clone();
    let pairs = super::query_pairs(uri.query());
    // A token in the URL: checked, kept in the cookie, and taken out of the URL.
    if let Some((_, token)) = pairs.iter().find(|(k, _)| k == "token") {
        if let Err(r) = check(&c, token).await {
            return r;
        }
        let rest: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let path = uri.path().strip_prefix(PREFIX).unwrap_or("/");
        return signed_in(&c, token, &super::url_with(path, &rest));
    }
    let token = bearer(req.headers()).or_else(|| cookie(req.headers(), &c.cookie_name()));
    match token {
        Some(t) => {
            if let Err(r) = check(&c, &t).await {
                return r;
            }
        }
        None if c.anonymous => {}
        None => {
            let next = uri.path_and_query().map(|p| p.as_str()).unwrap_or(PREFIX);
            return sign_in(
                &c.env,
                &format!(
                    "the console of environment `{}` needs an admin token of it",
                    c.env
                ),
                next,
            );
        }
    }
    next.run(req).await
}

/// `POST /ui/login`: the sign-in form (`token`, `next`).
pub async fn login(State(c): State<Arc<Console>>, body: String) -> Response {
    let pairs = super::query_pairs(Some(&body));
    let next = super::param(&pairs, "next")
        .filter(|n| safe_next(n))
        .unwrap_or("/ui/")
        .to_string();
    let Some(token) = super::param(&pairs, "token") else {
        return sign_in(&c.env, "give an admin token", &next);
    };
    if let Err(r) = check(&c, token).await {
        return r;
    }
    signed_in(&c, token, &next)
}

/// Only paths of the console are followed after signing in: never another site.
fn safe_next(next: &str) -> bool {
    (next == PREFIX || next.starts_with("/ui/") || next.starts_with("/ui?"))
        && !next.contains("//")
        && !next.contains('\\')
}

/// Ok for an admin token of the console's environment; else the page to show.
async fn check(c: &Console, token: &str) -> Result<(), Response> {
    match c.tokens.verify(token).await {
        Err(e) => Err(PageError::from(e).into_response()),
        Ok(None) => {
            let message = match crate::tokens::token_env(token) {
                Some(other) if other != c.env => format!(
                    "the token is one of environment `{other}`, not `{}`: tokens are valid only in their own environment",
                    c.env
                ),
                _ => format!(
                    "the token is not a token of environment `{}` (unknown or revoked)",
                    c.env
                ),
            };
            let mut r = sign_in(&c.env, &message, "/ui/");
            // A cookie that no longer signs in is dropped.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{}=; Path={PREFIX}; Max-Age=0; HttpOnly; SameSite=Strict",
                c.cookie_name()
            )) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            Err(r)
        }
        Ok(Some(t)) if t.scope != Scope::Admin => Err(PageError::new(
            403,
            format!(
                "the console needs an admin token; token `{}` is `{}` (create one with `sluice token create NAME --scope admin --env {}`)",
                t.name, t.scope, c.env
            ),
        )
        .into_response()),
        Ok(Some(_)) => Ok(()),
    }
}

/// A redirect to `to` that keeps `token` in the console's cookie.
fn signed_in(c: &Console, token: &str, to: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, "").into_response();
    let h = r.headers_mut();
    // Tokens are `sluice_<env>_<hex>`; anything else was refused by `check` already,
    // and a value a header cannot hold is refused here rather than mangled.
    let (Ok(cookie), Ok(location)) = (
        HeaderValue::from_str(&format!(
            "{}={token}; Path={PREFIX}; HttpOnly; SameSite=Strict",
            c.cookie_name()
        )),
        HeaderValue::from_str(to),
    ) else {
        return PageError::new(400, "the token cannot be kept in a cookie").into_response();
    };
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed() {
        assert!(safe_next("/ui/"));
        assert!(safe_next("/ui/pipes/top_reps?a=staging"));
        assert!(!safe_next("//evil.example/ui/"));
        assert!(!safe_next("https://evil.example/"));
        assert!(!safe_next("/ui//evil.example"));
        assert!(!safe_next("/uix"));
        assert!(!safe_next("/ui/\\evil"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sluice_console_prod=sluice_prod_x; b=2"),
        );
        assert_eq!(
            cookie(&h, "sluice_console_prod").as_deref(),
            Some("sluice_prod_x")
        );
        assert_eq!(cookie(&h, "sluice_console_staging"), None);
    }
}
