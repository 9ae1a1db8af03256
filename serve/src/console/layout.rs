//! The frame of every console page (navigation, styles) and its error pages. Pages are
//! built with maud, which escapes every value spliced into them: SQL, names, actors,
//! error messages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use sluice_engine::SluiceError;

use super::{Console, PREFIX};

/// The console's style sheet, served at `/ui/console.css`.
pub const CSS: &str = include_str!("console.css");

/// The navigation entries, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Pipe,
    Monitoring,
    Fidelity,
    None,
}

/// A whole page: the frame around `body`, with the console's security headers.
pub fn page(c: &Console, title: &str, nav: Nav, body: Markup) -> Response {
    respond(StatusCode::OK, frame(Some(c), title, nav, body))
}

fn frame(c: Option<&Console>, title: &str, nav: Nav, body: Markup) -> Markup {
    let item = |target: Nav, href: String, label: &str| {
        html! {
            a href=(href) class=[(nav == target).then_some("current")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sluice" }
                link rel="stylesheet" href={(PREFIX) "/console.css"};
            }
            body {
                header.top {
                    span.brand { "Sluice" }
                    @if let Some(c) = c {
                        span.project { (c.project.name) }
                        nav {
                            (item(Nav::Overview, format!("{PREFIX}/"), "Overview"))
                            (item(Nav::Monitoring, format!("{PREFIX}/monitor"), "Monitoring"))
                            (item(Nav::Fidelity, format!("{PREFIX}/fidelity"), "Staging against production"))
                        }
                        span.access { "tokens of " strong { (c.env) } }
                    }
                }
                main { (body) }
                footer { "Read-only. Times are UTC." }
            }
        }
    }
}

/// A page's response: HTML that loads nothing but the console's own style sheet, is
/// never framed, cached or sent as a referrer.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error shown as a page: its status and what is at fault.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: u16, message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: message.into(),
        }
    }
}

impl From<SluiceError> for PageError {
    fn from(e: SluiceError) -> Self {
        PageError::new(e.http_status(), e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (self.status.as_u16()) " " (title) }
            p.error { (self.message) }
            p { a href={(PREFIX) "/"} { "Back to the overview" } }
        };
        respond(self.status, frame(None, title, Nav::None, body))
    }
}

/// The page asking for a token (401), with a form that signs in.
pub fn sign_in(env: &str, message: &str, next: &str) -> Response {
    respond(StatusCode::UNAUTHORIZED, sign_in_markup(env, message, next))
}

fn sign_in_markup(env: &str, message: &str, next: &str) -> Markup {
    let body = html! {
        h1 { "401 Sign in" }
        p.error { (message) }
        form.signin method="post" action={(PREFIX) "/login"} {
            input type="hidden" name="next" value=(next);
            label {
                "An admin token of environment " strong { (env) } ": "
                input type="password" name="token" autocomplete="off" required;
            }
            button type="submit" { "Sign in" }
        }
        p.hint {
            "Create one with " code { "sluice token create NAME --scope admin --env " (env) }
            ". The console keeps it in an HttpOnly cookie for this site."
        }
    };
    frame(None, "Sign in", Nav::None, body)
}

/// A labelled value for the definition lists pages use.
pub fn field(label: &str, value: Markup) -> Markup {
    html! { dt { (label) } dd { (value) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_page_escapes_what_it_repeats() {
        let page = sign_in_markup("prod", "token <b>x</b>", "/ui/x\"><script>").into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(page.contains("token &lt;b&gt;x&lt;/b&gt;"), "{page}");
        assert!(
            page.contains(r#"value="/ui/x&quot;&gt;&lt;script&gt;""#),
            "{page}"
        );
    }

    #[test]
    fn pages_forbid_scripts_and_framing() {
        let r = PageError::new(404, "no pipe").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    }
}
