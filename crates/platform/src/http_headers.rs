//! Security headers on every answer: no sniffing, no referrer, no framing; a
//! Content-Security-Policy on HTML pages that allows only the page's own inline scripts (by
//! hash) and same-origin resources; `Cache-Control: no-store` on answers that carry tokens.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Largest HTML page read to hash its inline scripts. A larger one (none of ours comes near) is
/// answered with an empty body and a policy allowing no inline script, and logged.
const MAX_HASHED_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Adds the security headers; see the module doc.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let carries_tokens = req.uri().path().starts_with("/api/v1/auth/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if carries_tokens {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let is_html =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let (body, policy) = match axum::body::to_bytes(body, MAX_HASHED_PAGE_BYTES).await {
        Ok(bytes) => {
            let policy = content_security_policy(&String::from_utf8_lossy(&bytes));
            (Body::from(bytes), policy)
        }
        Err(e) => {
            tracing::error!(error = %e, "http.page_too_large_to_hash");
            (Body::empty(), content_security_policy(""))
        }
    };
    parts.headers.remove(CONTENT_LENGTH);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        parts.headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    Response::from_parts(parts, body)
}

/// The policy for one page: same-origin everything, inline styles, and exactly the page's own
/// inline scripts by their SHA-256.
pub(crate) fn content_security_policy(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'; form-action 'self'"
    )
}

/// The text of every `<script>` element without a `src` attribute.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || loop {
        let open = rest.find("<script")?;
        let after_open = &rest[open..];
        let tag_end = after_open.find('>')?;
        let tag = &after_open[..tag_end];
        let content = &after_open[tag_end + 1..];
        let close = content.find("</script>")?;
        rest = &content[close..];
        if !tag.contains("src=") {
            return Some(&content[..close]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inline_scripts_are_hashed() {
        let html = "<script src=\"/a.js\"></script><p>x</p><script>alert(1)</script><script type=\"module\">b()</script>";
        let scripts: Vec<_> = inline_scripts(html).collect();
        assert_eq!(scripts, ["alert(1)", "b()"]);
        let policy = content_security_policy(html);
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert!(policy.contains("'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    }

    #[test]
    fn a_page_without_inline_scripts_allows_none() {
        assert!(content_security_policy("<p>hi</p>").contains("script-src 'self';"));
        assert_eq!(inline_scripts("<script>unclosed").count(), 0);
    }
}
