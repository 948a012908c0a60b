//! Assets shared by the pages every module serves: sign-in, API calls with token refresh,
//! formatting and the small SVG chart helpers (`/ui/assets/sightline.js`), and the common style
//! (`/ui/assets/sightline.css`). Served from the binary; no page fetches anything from the
//! internet.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use utoipa_axum::routes;

use crate::auth::{Access, SecureRouter};

/// The asset routes.
pub fn routes() -> SecureRouter {
    SecureRouter::new().route(Access::Public, routes!(script)).route(Access::Public, routes!(style))
}

/// The pages' shared script.
#[utoipa::path(get, path = "/ui/assets/sightline.js", tag = "platform",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
async fn script() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        include_str!("../ui/sightline.js"),
    )
}

/// The pages' shared style.
#[utoipa::path(get, path = "/ui/assets/sightline.css", tag = "platform",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
async fn style() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        include_str!("../ui/sightline.css"),
    )
}
