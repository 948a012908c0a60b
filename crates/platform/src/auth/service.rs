//! Identity logic: login, refresh-token rotation with reuse detection, logout, users, API keys,
//! the first admin. Every auth event is published to the audit trail.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

pub use super::error::AuthError;
use crate::audit::{Actor, DomainEvent, EventBus};
use crate::auth::policy::AccessPolicy;
use crate::auth::store::{self, ApiKeyView, UserRow, UserView};
use crate::auth::throttle::{address_key, LoginLimits, LoginThrottle, WindowCounter};
use crate::auth::tokens::{self, JwtKeys, API_KEY_PREFIX};
use crate::auth::{password, AuthFailure, Principal, PrincipalKind};
use crate::config::AuthConfig;
use crate::context::RequestContext;
use crate::db::now_ms;
use crate::error::FieldError;
use crate::Db;

/// Tokens answered by login and refresh (the S&OP system's shape plus OAuth2's fields).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9.…", "refresh_token": "slr_…", "token_type": "bearer",
    "expires_in": 900, "user": {"id": "usr_3f9a1c2b7d0e", "username": "admin", "roles": ["admin"]}}))]
pub struct TokenResponse {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `POST /api/v1/auth/refresh` (single use; rotated).
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// The signed-in user.
    pub user: UserView,
}

/// A new API key: the key is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key, for `Authorization: Bearer` or `X-API-Key`.
    pub key: String,
    /// Its record.
    #[serde(flatten)]
    pub record: ApiKeyView,
}

/// Identity services. Cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    db: Db,
    bus: EventBus,
    policy: Arc<AccessPolicy>,
    keys: Arc<JwtKeys>,
    throttle: Arc<LoginThrottle>,
    registrations: Arc<WindowCounter>,
    config: Arc<AuthConfig>,
}

/// Which of a user's sessions a change ends.
#[derive(Clone, Copy)]
enum EndSessions<'a> {
    /// None (a disabled user's end anyway).
    None,
    /// Every one.
    All,
    /// Every one but this (the caller's own).
    AllBut(&'a str),
}

/// Longest login identifier looked up: the longest email address.
pub const MAX_LOGIN_CHARS: usize = 254;

/// Refuses a login identifier that no account could have (too long, or holding whitespace or
/// control characters) before it is throttled, audited or logged.
pub fn check_login_identifier(field: &str, login: &str) -> Result<(), AuthError> {
    let login = login.trim();
    if login.chars().count() > MAX_LOGIN_CHARS {
        return Err(AuthError::invalid(field, format!("at most {MAX_LOGIN_CHARS} characters")));
    }
    if login.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AuthError::invalid(field, "must not contain spaces or control characters"));
    }
    Ok(())
}

fn normalise(login: &str) -> String {
    login.trim().to_lowercase()
}

impl AuthService {
    /// The service; the signing secret comes from config or `<data_dir>/jwt-secret`.
    pub fn new(
        db: Db,
        bus: EventBus,
        policy: Arc<AccessPolicy>,
        config: &AuthConfig,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let secret = tokens::load_or_create_secret(config.jwt_secret.as_ref().map(|s| s.expose()), data_dir)?;
        let keys = JwtKeys::new(&secret, &config.issuer, &config.audience, config.access_token_ttl_secs);
        let throttle = LoginThrottle::new(LoginLimits {
            window: Duration::from_secs(config.login_window_secs),
            per_account_address: config.login_max_failures_per_account_address,
            per_address: config.login_max_failures_per_address,
            per_account: config.login_max_failures_per_account,
        });
        let registrations = WindowCounter::new(Duration::from_secs(config.registration_window_secs));
        Ok(Self {
            db,
            bus,
            policy,
            keys: Arc::new(keys),
            throttle: Arc::new(throttle),
            registrations: Arc::new(registrations),
            config: Arc::new(config.clone()),
        })
    }

    /// The role and permission table.
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// Whether self-registration is on.
    pub fn registration_enabled(&self) -> bool {
        self.config.registration_enabled
    }

    /// Whether `/metrics` is public.
    pub fn metrics_public(&self) -> bool {
        self.config.metrics_public
    }

    /// Resolves a bearer value (JWT or API key) to its principal, checking that the user is
    /// active or the key unrevoked.
    pub async fn resolve(&self, token: &str) -> Result<Principal, AuthFailure> {
        let mut conn = self.db.reader().acquire().await?;
        if token.starts_with(API_KEY_PREFIX) {
            let key = store::key_by_hash(&mut conn, &tokens::hash_token(token)).await?;
            return match key {
                Some(k) if k.revoked_at.is_none() => Ok(Principal {
                    kind: PrincipalKind::ApiKey,
                    id: k.id,
                    name: k.name,
                    roles: Vec::new(),
                    permissions: k.permissions.into_iter().collect(),
                    session: None,
                }),
                Some(_) => Err(AuthFailure::Refused("API key revoked".into())),
                None => Err(AuthFailure::Refused("invalid API key".into())),
            };
        }
        let claims = self.keys.verify(token).map_err(|r| AuthFailure::Refused(r.into()))?;
        let Some(session) = claims.sid else {
            return Err(AuthFailure::Refused("token has no session; sign in again".into()));
        };
        let user = match store::user_by_id(&mut conn, &claims.sub).await? {
            Some(u) if u.active => u,
            Some(_) => return Err(AuthFailure::Refused("user is disabled".into())),
            None => return Err(AuthFailure::Refused("user not found".into())),
        };
        if !store::session_live(&mut conn, &session).await? {
            return Err(AuthFailure::Refused("session ended; sign in again".into()));
        }
        Ok(self.principal_of(&user, Some(session)))
    }

    fn principal_of(&self, u: &UserRow, session: Option<String>) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: u.id.clone(),
            name: u.username.clone(),
            roles: u.roles.clone(),
            permissions: self.policy.permissions_of(u.roles.iter().map(String::as_str)),
            session,
        }
    }

    async fn issue(
        &self,
        conn: &mut sqlx::AnyConnection,
        user: &UserRow,
        family: Option<&str>,
    ) -> Result<TokenResponse, AuthError> {
        let family = family.map(str::to_owned).unwrap_or_else(|| tokens::random_hex(12));
        let access_token = self.keys.issue(
            &user.id,
            &user.username,
            user.email.as_deref(),
            user.roles.first().map(String::as_str),
            &family,
        )?;
        let refresh_token = format!("slr_{}", tokens::random_hex(32));
        let now = now_ms();
        let expires = now + self.config.refresh_token_ttl_secs * 1000;
        store::insert_refresh(conn, &tokens::hash_token(&refresh_token), &family, &user.id, expires, now)
            .await?;
        Ok(TokenResponse {
            access_token,
            refresh_token,
            token_type: "bearer",
            expires_in: self.keys.ttl_secs(),
            user: UserView::from(user),
        })
    }

    /// Signs in with a username or email and a password. Wrong passwords are throttled per
    /// (account, address), per address and per account ([`LoginThrottle`]).
    pub async fn login(
        &self,
        context: &RequestContext,
        login: &str,
        password: &str,
        address: &str,
    ) -> Result<TokenResponse, AuthError> {
        check_login_identifier("username", login)?;
        let login = normalise(login);
        if let Err(wait) = self.throttle.check_address(address) {
            return Err(self.refuse_throttled(context, &login, address, wait).await);
        }
        let user = {
            let mut conn = self.db.reader().acquire().await?;
            store::user_by_login(&mut conn, &login).await?
        };
        // An account is its id, so its username and email share one counter.
        let account = user.as_ref().map_or_else(|| format!("login:{login}"), |u| u.id.clone());
        let attempt = match self.throttle.begin_login(&account, address) {
            Ok(attempt) => attempt,
            Err(wait) => return Err(self.refuse_throttled(context, &login, address, wait).await),
        };
        let ok = password::verify(password.to_owned(), user.as_ref().map(|u| u.password_hash.clone())).await;
        let user = match user {
            Some(u) if ok && u.active => u,
            _ => {
                let event = DomainEvent::new("auth.login_failed", "user", &login)
                    .after(json!({"address": address}))
                    .by(Some(Actor::anonymous(&login)), context.request_id.clone());
                self.bus.publish_alone(&self.db, event).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.throttle.succeeded(attempt);
        let mut tx = self.db.begin().await?;
        let mut updated = user.clone();
        updated.last_login_at = Some(now_ms());
        store::update_user(&mut tx, &updated, now_ms()).await?;
        let response = self.issue(&mut tx, &updated, None).await?;
        let event = DomainEvent::new("auth.login", "user", &user.id)
            .after(json!({"address": address}))
            .by(Some(self.principal_of(&user, None).actor()), context.request_id.clone());
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// The refusal of a throttled attempt, with one audit row per address and window (a flood
    /// of refused attempts writes nothing more).
    async fn refuse_throttled(
        &self,
        context: &RequestContext,
        login: &str,
        address: &str,
        wait: Duration,
    ) -> AuthError {
        if self.throttle.first_refusal_in_window(address) {
            let event = DomainEvent::new("auth.login_throttled", "user", login)
                .after(json!({"address": address}))
                .by(Some(Actor::anonymous(login)), context.request_id.clone());
            if let Err(e) = self.bus.publish_alone(&self.db, event).await {
                return e.into();
            }
        }
        AuthError::Throttled { what: "too many failed logins", retry_after_secs: wait.as_secs().max(1) }
    }

    /// Exchanges a refresh token for new tokens. A token is single-use: presenting a used one
    /// again revokes its whole family (someone else has it).
    pub async fn refresh(
        &self,
        context: &RequestContext,
        refresh_token: &str,
    ) -> Result<TokenResponse, AuthError> {
        let hash = tokens::hash_token(refresh_token.trim());
        let mut tx = self.db.begin().await?;
        let Some(row) = store::refresh_by_hash(&mut tx, &hash).await? else {
            return Err(AuthError::Unauthorized("invalid refresh token"));
        };
        let now = now_ms();
        if row.revoked_at.is_some() {
            return Err(AuthError::Unauthorized("refresh token revoked"));
        }
        if row.used_at.is_some() || !store::use_refresh(&mut tx, &hash, now).await? {
            store::revoke_family(&mut tx, &row.family_id, now).await?;
            let event = DomainEvent::new("auth.refresh_reused", "user", &row.user_id)
                .after(json!({"family": row.family_id}))
                .by(Some(Actor::anonymous("unknown")), context.request_id.clone());
            self.bus.publish(&mut tx, vec![event]).await?;
            tx.commit().await?;
            return Err(AuthError::Unauthorized(
                "refresh token already used; every session of this login is revoked",
            ));
        }
        if row.expires_at <= now {
            return Err(AuthError::Unauthorized("refresh token expired"));
        }
        let user = match store::user_by_id(&mut tx, &row.user_id).await? {
            Some(u) if u.active => u,
            _ => return Err(AuthError::Unauthorized("user is disabled")),
        };
        let response = self.issue(&mut tx, &user, Some(&row.family_id)).await?;
        let event = DomainEvent::new("auth.token_refreshed", "user", &user.id)
            .by(Some(self.principal_of(&user, None).actor()), context.request_id.clone());
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(response)
    }

    /// Ends the session a refresh token belongs to (its whole family, and the session's access
    /// tokens with it), when the token is the caller's own; anyone else's is left alone, and the
    /// answer is the same either way.
    pub async fn logout(
        &self,
        context: &RequestContext,
        principal: &Principal,
        refresh_token: &str,
    ) -> Result<(), AuthError> {
        let mut tx = self.db.begin().await?;
        let row = store::refresh_by_hash(&mut tx, &tokens::hash_token(refresh_token.trim())).await?;
        let own = row.filter(|r| principal.kind == PrincipalKind::User && r.user_id == principal.id);
        if let Some(row) = own {
            store::revoke_family(&mut tx, &row.family_id, now_ms()).await?;
            self.bus
                .publish(&mut tx, vec![DomainEvent::new("auth.logout", "user", &row.user_id).within(context)])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The signed-in user.
    pub async fn me(&self, principal: &Principal) -> Result<UserView, AuthError> {
        if principal.kind == PrincipalKind::ApiKey {
            return Err(AuthError::NotFound("API keys have no user profile"));
        }
        let mut conn = self.db.reader().acquire().await?;
        let user = store::user_by_id(&mut conn, &principal.id)
            .await?
            .ok_or_else(|| AuthError::NotFound("user not found"))?;
        Ok(UserView::from(&user))
    }

    fn check_roles(&self, roles: &[String]) -> Result<(), AuthError> {
        match roles.iter().find(|r| !AccessPolicy::is_role(r)) {
            Some(bad) => {
                Err(AuthError::Invalid(vec![FieldError::new("roles", format!("unknown role {bad}"))]))
            }
            None if roles.is_empty() => {
                Err(AuthError::Invalid(vec![FieldError::new("roles", "at least one role")]))
            }
            None => Ok(()),
        }
    }

    /// Creates a user (admin, CLI, bootstrap or registration).
    pub async fn create_user(
        &self,
        context: &RequestContext,
        username: &str,
        email: Option<&str>,
        full_name: Option<&str>,
        password: &str,
        roles: Vec<String>,
    ) -> Result<UserView, AuthError> {
        let username = normalise(username);
        let mut errors = Vec::new();
        if username.is_empty()
            || username.len() > 64
            || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            errors.push(FieldError::new("username", "1 to 64 of letters, digits and . _ - @"));
        }
        if let Some(e) = email.filter(|e| !e.contains('@') || e.len() > 254) {
            errors.push(FieldError::new("email", format!("`{e}` is not an email address")));
        }
        let inputs = [username.as_str(), email.unwrap_or_default()];
        if let Err(rule) = password::check_rule(password, &inputs) {
            errors.push(FieldError::new("password", rule));
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        self.check_roles(&roles)?;
        let user = UserRow {
            id: format!("usr_{}", tokens::random_hex(6)),
            username,
            email: email.map(normalise),
            full_name: full_name.map(str::to_owned),
            password_hash: password::hash(password.to_owned()).await?,
            active: true,
            roles,
            created_at: now_ms(),
            last_login_at: None,
        };
        let mut tx = self.db.begin().await?;
        if store::login_taken(&mut tx, &user.username, user.email.as_deref()).await?
            || !store::insert_user(&mut tx, &user, user.created_at).await?
        {
            return Err(AuthError::AlreadyRegistered);
        }
        let view = UserView::from(&user);
        let event = DomainEvent::new("user.created", "user", &user.id)
            .after(serde_json::to_value(&view).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Lists users.
    pub async fn list_users(&self) -> Result<Vec<UserView>, AuthError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::list_users(&mut conn).await?.iter().map(UserView::from).collect())
    }

    async fn change_user(
        &self,
        context: &RequestContext,
        id: &str,
        action: &str,
        change: impl FnOnce(&mut UserRow) -> Result<(), AuthError>,
        end: EndSessions<'_>,
    ) -> Result<UserView, AuthError> {
        let mut tx = self.db.begin().await?;
        let mut user =
            store::user_by_id(&mut tx, id).await?.ok_or_else(|| AuthError::NotFound("user not found"))?;
        let before = UserView::from(&user);
        change(&mut user)?;
        let now = now_ms();
        store::update_user(&mut tx, &user, now).await?;
        match if user.active { end } else { EndSessions::All } {
            EndSessions::None => {}
            EndSessions::All => {
                store::revoke_user_tokens(&mut tx, id, None, now).await?;
            }
            EndSessions::AllBut(keep) => {
                store::revoke_user_tokens(&mut tx, id, Some(keep), now).await?;
            }
        }
        let after = UserView::from(&user);
        let event = DomainEvent::new(action, "user", id)
            .before(serde_json::to_value(&before).unwrap_or_default())
            .after(serde_json::to_value(&after).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes a user's roles, active flag, email or name (admin). Disabling revokes sessions.
    pub async fn update_user(
        &self,
        context: &RequestContext,
        id: &str,
        roles: Option<Vec<String>>,
        active: Option<bool>,
        email: Option<Option<String>>,
        full_name: Option<Option<String>>,
    ) -> Result<UserView, AuthError> {
        if let Some(r) = &roles {
            self.check_roles(r)?;
        }
        let action = match (&roles, active) {
            (Some(_), _) => "user.roles_changed",
            (None, Some(false)) => "user.disabled",
            (None, Some(true)) => "user.enabled",
            _ => "user.updated",
        };
        self.change_user(
            context,
            id,
            action,
            |u| {
                if let Some(r) = roles {
                    u.roles = r;
                }
                if let Some(a) = active {
                    u.active = a;
                }
                if let Some(e) = email {
                    u.email = e.map(|e| normalise(&e));
                }
                if let Some(n) = full_name {
                    u.full_name = n;
                }
                Ok(())
            },
            EndSessions::None,
        )
        .await
    }

    /// Sets a new password (admin reset, CLI); ends every session of the user.
    pub async fn set_password(
        &self,
        context: &RequestContext,
        id: &str,
        new_password: &str,
        action: &str,
    ) -> Result<UserView, AuthError> {
        let user = {
            let mut conn = self.db.reader().acquire().await?;
            store::user_by_id(&mut conn, id).await?.ok_or(AuthError::NotFound("user not found"))?
        };
        self.replace_password(context, &user, new_password, action, EndSessions::All).await
    }

    async fn replace_password(
        &self,
        context: &RequestContext,
        user: &UserRow,
        new_password: &str,
        action: &str,
        end: EndSessions<'_>,
    ) -> Result<UserView, AuthError> {
        let inputs = [user.username.as_str(), user.email.as_deref().unwrap_or_default()];
        password::check_rule(new_password, &inputs)
            .map_err(|r| AuthError::Invalid(vec![FieldError::new("new_password", r)]))?;
        let hash = password::hash(new_password.to_owned()).await?;
        self.change_user(
            context,
            &user.id,
            action,
            |u| {
                u.password_hash = hash;
                Ok(())
            },
            end,
        )
        .await
    }

    /// Changes the signed-in user's own password; ends their other sessions. Wrong current
    /// passwords count against the login throttle.
    pub async fn change_own_password(
        &self,
        context: &RequestContext,
        principal: &Principal,
        current: &str,
        new: &str,
        address: &str,
    ) -> Result<UserView, AuthError> {
        let user = {
            let mut conn = self.db.reader().acquire().await?;
            store::user_by_id(&mut conn, &principal.id)
                .await?
                .ok_or_else(|| AuthError::NotFound("user not found"))?
        };
        let attempt =
            self.throttle.begin_reauthentication(&user.id, address).map_err(|wait| AuthError::Throttled {
                what: "too many wrong current passwords",
                retry_after_secs: wait.as_secs().max(1),
            })?;
        if !password::verify(current.to_owned(), Some(user.password_hash.clone())).await {
            return Err(AuthError::Invalid(vec![FieldError::new(
                "current_password",
                "is not the current password",
            )]));
        }
        self.throttle.succeeded(attempt);
        let end = principal.session.as_deref().map_or(EndSessions::All, EndSessions::AllBut);
        self.replace_password(context, &user, new, "user.password_changed", end).await
    }

    /// Self-registration of a `viewer` (when enabled), throttled per address. An email that
    /// is taken gets the same answer as a new one, and nothing is created, so registering
    /// tells nobody which emails have accounts.
    pub async fn register(
        &self,
        context: &RequestContext,
        email: &str,
        full_name: Option<&str>,
        password: &str,
        address: &str,
    ) -> Result<UserView, AuthError> {
        let key = format!("r:{}", address_key(address));
        self.registrations.try_record(&[(&key, self.config.registration_max_per_address)]).map_err(
            |wait| AuthError::Throttled {
                what: "too many registrations from this address",
                retry_after_secs: wait.as_secs().max(1),
            },
        )?;
        let roles = vec!["viewer".to_owned()];
        match self.create_user(context, email, Some(email), full_name, password, roles.clone()).await {
            Err(AuthError::AlreadyRegistered) => {
                let login = normalise(email);
                let event = DomainEvent::new("auth.registration_of_taken_login", "user", &login)
                    .after(json!({"address": address}))
                    .by(Some(Actor::anonymous("anonymous")), context.request_id.clone());
                self.bus.publish_alone(&self.db, event).await?;
                let lookalike = UserRow {
                    id: format!("usr_{}", tokens::random_hex(6)),
                    username: login.clone(),
                    email: Some(login),
                    full_name: full_name.map(str::to_owned),
                    password_hash: String::new(),
                    active: true,
                    roles,
                    created_at: now_ms(),
                    last_login_at: None,
                };
                Ok(UserView::from(&lookalike))
            }
            other => other,
        }
    }

    /// Creates an API key with `permissions` (each must be declared); the key is returned once.
    pub async fn create_api_key(
        &self,
        context: &RequestContext,
        name: &str,
        permissions: Vec<String>,
        created_by: Option<&str>,
    ) -> Result<CreatedApiKey, AuthError> {
        let mut errors = Vec::new();
        if name.trim().is_empty() || name.len() > 100 {
            errors.push(FieldError::new("name", "1 to 100 characters"));
        }
        if permissions.is_empty() {
            errors.push(FieldError::new("permissions", "at least one permission"));
        }
        for p in permissions.iter().filter(|p| !self.policy.is_known(p)) {
            errors.push(FieldError::new("permissions", format!("unknown permission {p}")));
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let key = format!("{API_KEY_PREFIX}{}", tokens::random_hex(24));
        let now = now_ms();
        let record = ApiKeyView {
            id: format!("key_{}", tokens::random_hex(6)),
            name: name.trim().to_owned(),
            prefix: key[..12].to_owned(),
            permissions,
            created_by: created_by.map(str::to_owned),
            created_at: crate::db::ms_to_rfc3339(now),
            revoked_at: None,
        };
        let mut tx = self.db.begin().await?;
        store::insert_key(&mut tx, &record, &tokens::hash_token(&key), now).await?;
        let event = DomainEvent::new("api_key.created", "api_key", &record.id)
            .after(json!({"name": record.name, "permissions": record.permissions}))
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(CreatedApiKey { key, record })
    }

    /// Lists API keys (never the keys themselves).
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyView>, AuthError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::list_keys(&mut conn).await?)
    }

    /// Revokes an API key; it is refused from the next request on.
    pub async fn revoke_api_key(&self, context: &RequestContext, id: &str) -> Result<ApiKeyView, AuthError> {
        let mut tx = self.db.begin().await?;
        if !store::revoke_key(&mut tx, id, now_ms()).await? {
            return Err(AuthError::NotFound("API key not found or already revoked"));
        }
        self.bus
            .publish(&mut tx, vec![DomainEvent::new("api_key.revoked", "api_key", id).within(context)])
            .await?;
        let view =
            store::key_by_id(&mut tx, id).await?.ok_or_else(|| AuthError::NotFound("API key not found"))?;
        tx.commit().await?;
        Ok(view)
    }

    /// Creates user `admin` when there is no user at all. The password is
    /// `SIGHTLINE_ADMIN_PASSWORD`, or generated, logged once and written (0600) to
    /// `<data_dir>/admin-password`.
    pub async fn bootstrap_admin(&self, data_dir: &Path) -> anyhow::Result<()> {
        let mut conn = self.db.writer().acquire().await?;
        if store::count_users(&mut conn).await? > 0 {
            return Ok(());
        }
        drop(conn);
        let (password, generated) = match std::env::var("SIGHTLINE_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (tokens::random_hex(12), true),
        };
        let system = RequestContext::system();
        let created = self
            .create_user(&system, "admin", None, Some("Administrator"), &password, vec!["admin".into()])
            .await;
        match created {
            Ok(_) => {}
            Err(AuthError::AlreadyRegistered) => return Ok(()), // another process won
            Err(e) => return Err(anyhow::Error::new(e).context("could not create the first admin")),
        }
        if generated {
            let path = data_dir.join("admin-password");
            std::fs::create_dir_all(data_dir)?;
            let _ = std::fs::remove_file(&path);
            tokens::write_private(&path, &format!("{password}\n"))?;
            // Printed once, on purpose: the operator needs it to sign in the first time.
            tracing::warn!(username = "admin", password = %password, file = %path.display(), "auth.admin_created");
        } else {
            tracing::info!(username = "admin", "auth.admin_created_from_env");
        }
        Ok(())
    }
}
