//! The root `/`: a home page for browsers linking every enabled module's pages, the API docs,
//! the job dashboard and health; for JSON clients, the originals' root answer (a welcome
//! message, app, version, docs and status).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::{Access, SecureRouter};
use crate::module::PageLink;

/// The root's JSON answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"message": "Welcome to Sightline API", "app": "Sightline", "version": "0.1.0",
    "docs": "/docs", "status": "running", "pages": [{"path": "/ui/usage", "title": "Usage upload",
    "description": "Upload usage CSV files and follow the import"}]}))]
struct Root {
    /// A welcome line, as the originals answer.
    message: &'static str,
    /// The product.
    app: &'static str,
    /// The server's version.
    version: &'static str,
    /// Where the API documentation is.
    docs: &'static str,
    /// Always `running` when it answers.
    status: &'static str,
    /// The pages of the enabled modules.
    pages: Vec<PageLink>,
}

/// The root route over the enabled modules' pages.
pub fn routes(pages: Vec<PageLink>) -> SecureRouter {
    SecureRouter::new().route(Access::Public, routes!(root)).with_state(Arc::new(pages))
}

/// Home: an HTML page for browsers (`Accept: text/html`), else the JSON welcome answer.
#[utoipa::path(get, path = "/", tag = "platform",
    responses((status = 200, description = "the welcome answer, or the home page for browsers", body = Root)))]
async fn root(State(pages): State<Arc<Vec<PageLink>>>, headers: HeaderMap) -> Response {
    let wants_html =
        headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return Html(home_page(&pages)).into_response();
    }
    Json(Root {
        message: "Welcome to Sightline API",
        app: "Sightline",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/docs",
        status: "running",
        pages: pages.to_vec(),
    })
    .into_response()
}

fn home_page(pages: &[PageLink]) -> String {
    let platform = [
        ("/docs", "API documentation", "Every route, its parameters and answers; try them out"),
        ("/rq", "Jobs", "The background job queue: running, failed and retried jobs, and workers"),
        ("/health", "Health", "Liveness; /health/ready checks the database and the queue"),
    ];
    let card = |path: &str, title: &str, description: &str| {
        format!(
            "<a class=\"card\" href=\"{}\"><h3>{}</h3><div class=\"card-note\">{}</div></a>\n",
            escape(path),
            escape(title),
            escape(description)
        )
    };
    let modules: String = pages.iter().map(|p| card(p.path, p.title, p.description)).collect();
    let platform: String = platform.iter().map(|(p, t, d)| card(p, t, d)).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sightline</title>
<link rel="stylesheet" href="/ui/assets/sightline.css">
</head>
<body>
<header class="topbar"><h1><span class="brand">Sightline</span> {version}</h1></header>
<main>
<h2>Pages</h2>
<div class="cards" id="module-pages">
{modules}</div>
<h2>Operations</h2>
<div class="cards" id="platform-pages">
{platform}</div>
</main>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
