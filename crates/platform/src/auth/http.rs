//! Routes of identity and audit: login (JSON or the OAuth2 password form), refresh, logout,
//! me, password change, registration (off by default), users, API keys, roles, audit trail.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::error::AuthError;
use crate::audit::{self, AuditEntry, AuditFilter};
use crate::auth::access::{Access, SecureRouter};
use crate::auth::policy::{PermissionView, RoleView};
use crate::auth::service::{AuthService, CreatedApiKey, TokenResponse};
use crate::auth::store::{ApiKeyView, UserView};
use crate::auth::Principal;
use crate::client_address::ClientAddress;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::validate::{from_value, parse_datetime, ApiJson, ApiQuery};
use crate::{Db, Page};

/// State of these routes.
#[derive(Clone)]
pub struct AuthState {
    /// Identity services.
    pub auth: AuthService,
    /// For the audit listing.
    pub db: Db,
}

/// The identity and audit routes.
pub fn router(state: AuthState) -> SecureRouter {
    SecureRouter::new()
        .route(Access::Public, routes!(login))
        .route(Access::Public, routes!(refresh))
        .route(Access::Public, routes!(register))
        .route(Access::Authenticated, routes!(logout))
        .route(Access::Authenticated, routes!(me))
        .route(Access::Authenticated, routes!(change_password))
        .route(Access::Authenticated, routes!(list_roles))
        .route(Access::Permission("users:manage"), routes!(list_users, create_user))
        .route(Access::Permission("users:manage"), routes!(update_user))
        .route(Access::Permission("users:manage"), routes!(reset_password))
        .route(Access::Permission("apikeys:manage"), routes!(list_api_keys, create_api_key))
        .route(Access::Permission("apikeys:manage"), routes!(revoke_api_key))
        .route(Access::Permission("audit:read"), routes!(list_audit))
        .with_state(state)
}

/// Login: `{email|username, password}` as JSON, or the OAuth2 password form
/// (`username`, `password`, `grant_type=password`) that Swagger's Authorize sends.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"username": "admin", "password": "••••••••••"}))]
pub struct LoginRequest {
    /// Email (the S&OP system's field).
    #[serde(default)]
    pub email: Option<String>,
    /// Username (or email).
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    pub password: String,
}

/// Sign in; returns an access token, a refresh token and the user.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "too many failed logins", body = ErrorBody),
    ))]
async fn login(
    context: RequestContext,
    State(s): State<AuthState>,
    address: ClientAddress,
    req: Request,
) -> ApiResult<Json<TokenResponse>> {
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body: LoginRequest = if is_form {
        let bytes =
            bytes::Bytes::from_request(req, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map_err(|e| ApiError::bad_request(format!("form body: {e}")))?;
        let mut form = Map::new();
        for (key, value) in pairs {
            if form.contains_key(&key) {
                return Err(ApiError::validation(vec![FieldError::new(
                    key,
                    "appears more than once in the form",
                )]));
            }
            form.insert(key, Value::String(value));
        }
        from_value(Value::Object(form))?
    } else {
        ApiJson::<LoginRequest>::from_request(req, &()).await?.0
    };
    let given = [("username", body.username), ("email", body.email)];
    let Some((field, login)) =
        given.into_iter().find_map(|(f, v)| v.filter(|l| !l.trim().is_empty()).map(|v| (f, v)))
    else {
        return Err(ApiError::validation(vec![FieldError::new("username", "username or email required")]));
    };
    crate::auth::service::check_login_identifier(field, &login)?;
    Ok(Json(s.auth.login(&context, &login, &body.password, &address.to_string()).await?))
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from login or the previous refresh.
    pub refresh_token: String,
}

/// Exchange a refresh token for new tokens (the old one is spent; reusing it revokes the login).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
async fn refresh(
    context: RequestContext,
    State(s): State<AuthState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(s.auth.refresh(&context, &body.refresh_token).await?))
}

/// Sign out: ends the session the refresh token belongs to, with its access tokens, when the
/// token is the caller's own (204 either way).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "signed out"), (status = 401, body = ErrorBody)))]
async fn logout(
    context: RequestContext,
    State(s): State<AuthState>,
    principal: Principal,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    s.auth.logout(&context, &principal, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(State(s): State<AuthState>, principal: Principal) -> ApiResult<Json<UserView>> {
    Ok(Json(s.auth.me(&principal).await?))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new one (10 to 256 characters).
    pub new_password: String,
}

/// Change your own password; ends your other sessions. Wrong current passwords are throttled
/// like failed logins.
#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangePassword,
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "too many wrong current passwords", body = ErrorBody)))]
async fn change_password(
    context: RequestContext,
    State(s): State<AuthState>,
    principal: Principal,
    address: ClientAddress,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<Json<UserView>> {
    let (current, new) = (&body.current_password, &body.new_password);
    Ok(Json(s.auth.change_own_password(&context, &principal, current, new, &address.to_string()).await?))
}

/// A self-registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email, also the username.
    pub email: String,
    /// Password (10 to 256 characters).
    pub password: String,
    /// Display name.
    #[serde(default)]
    pub full_name: Option<String>,
}

/// Register a `viewer` account (only when `auth.registration_enabled`; off by default).
/// Throttled per client address. An email that already has an account is answered like a new
/// one and nothing is created, so the answer tells nobody which emails exist.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 403, description = "registration is disabled", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, description = "too many registrations from this address", body = ErrorBody)))]
async fn register(
    context: RequestContext,
    State(s): State<AuthState>,
    address: ClientAddress,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    if !s.auth.registration_enabled() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "registration is disabled"));
    }
    let user = s
        .auth
        .register(&context, &body.email, body.full_name.as_deref(), &body.password, &address.to_string())
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The role and permission table.
#[derive(Debug, Serialize, ToSchema)]
struct RolesTable {
    roles: Vec<RoleView>,
    permissions: Vec<PermissionView>,
}

/// Every role with the permissions it grants, and every permission.
#[utoipa::path(get, path = "/api/v1/auth/roles", tag = "auth", responses((status = 200, body = RolesTable)))]
async fn list_roles(State(s): State<AuthState>) -> Json<RolesTable> {
    let policy = s.auth.policy();
    Json(RolesTable { roles: policy.roles(), permissions: policy.permissions() })
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Display name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// Initial password (10 to 256 characters).
    pub password: String,
    /// Roles (default `viewer`).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// All users.
#[utoipa::path(get, path = "/api/v1/auth/users", tag = "auth", responses((status = 200, body = Vec<UserView>)))]
async fn list_users(State(s): State<AuthState>) -> ApiResult<Json<Vec<UserView>>> {
    Ok(Json(s.auth.list_users().await?))
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/auth/users", tag = "auth", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    context: RequestContext,
    State(s): State<AuthState>,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let roles = body.roles.unwrap_or_else(|| vec!["viewer".into()]);
    let user = s
        .auth
        .create_user(
            &context,
            &body.username,
            body.email.as_deref(),
            body.full_name.as_deref(),
            &body.password,
            roles,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New roles.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// `false` disables the user at once (and ends their sessions).
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New email (null clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New display name (null clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
}

/// Change a user's roles, active flag, email or name.
#[utoipa::path(patch, path = "/api/v1/auth/users/{id}", tag = "auth", request_body = UpdateUser,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_user(
    context: RequestContext,
    State(s): State<AuthState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(s.auth.update_user(&context, &id, body.roles, body.is_active, body.email, body.full_name).await?))
}

/// A password reset by an admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The new password (10 to 256 characters).
    pub new_password: String,
}

/// Reset a user's password; ends their sessions.
#[utoipa::path(post, path = "/api/v1/auth/users/{id}/password", tag = "auth", request_body = ResetPassword,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reset_password(
    context: RequestContext,
    State(s): State<AuthState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(s.auth.set_password(&context, &id, &body.new_password, "user.password_reset").await?))
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "income calculator", "permissions": ["events:write", "nba:read"]}))]
pub struct CreateApiKey {
    /// What it is for.
    pub name: String,
    /// Permissions it grants.
    pub permissions: Vec<String>,
}

/// All API keys (without the keys).
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "auth", responses((status = 200, body = Vec<ApiKeyView>)))]
async fn list_api_keys(State(s): State<AuthState>) -> ApiResult<Json<Vec<ApiKeyView>>> {
    Ok(Json(s.auth.list_api_keys().await?))
}

/// Create an API key; the key is in this answer only.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "auth", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = ErrorBody)))]
async fn create_api_key(
    context: RequestContext,
    State(s): State<AuthState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let created =
        s.auth.create_api_key(&context, &body.name, body.permissions, Some(&principal.name)).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an API key; it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)))]
async fn revoke_api_key(
    context: RequestContext,
    State(s): State<AuthState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(s.auth.revoke_api_key(&context, &id).await?))
}

/// The audit trail, newest first, filtered by actor, entity, action and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "auth", params(AuditFilter),
    responses((status = 200, body = Page<AuditEntry>), (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(s): State<AuthState>,
    ApiQuery(f): ApiQuery<AuditFilter>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let (limit, offset) = crate::paging(f.limit, f.offset)?;
    let mut errors = Vec::new();
    let mut time = |field: &str, raw: &Option<String>| {
        raw.as_deref().and_then(|r| match parse_datetime(r) {
            Some(t) => Some(t.timestamp_millis()),
            None => {
                errors.push(FieldError::new(field, "must be an RFC 3339 date-time"));
                None
            }
        })
    };
    let (since, until) = (time("since", &f.since), time("until", &f.until));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut conn = s.db.reader().acquire().await.map_err(AuthError::from)?;
    let (items, total) =
        audit::list(&mut conn, &f, since, until, limit, offset).await.map_err(AuthError::from)?;
    Ok(Json(Page { items, total, limit, offset }))
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
