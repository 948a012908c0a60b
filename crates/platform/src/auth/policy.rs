//! Roles and permissions in one place: which role grants which named permission. The platform
//! declares its permissions here; each module declares its own (with the roles that get them)
//! in its `ModuleParts`, and the server merges them into one [`AccessPolicy`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

/// A named permission and the roles that hold it (`admin` holds every permission).
#[derive(Debug, Clone, Copy)]
pub struct PermissionSpec {
    /// `area:verb`, e.g. `nba:read`.
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    /// Roles granted it, besides `admin`.
    pub roles: &'static [&'static str],
}

/// Every role: the S&OP system's eight plus `analyst` (usage and NBA analysis).
pub const ROLES: &[(&str, &str)] = &[
    ("admin", "Everything, including users, API keys and the audit trail"),
    ("executive", "Reads everything; approves plans"),
    ("demand_planner", "Demand plans and forecasts"),
    ("supply_planner", "Supply plans"),
    ("inventory_manager", "Inventory"),
    ("finance_analyst", "Financial figures and forecasts"),
    ("sop_coordinator", "Runs S&OP cycles; acts on next-best-actions"),
    ("viewer", "Reads dashboards and NBAs"),
    ("analyst", "Analyses usage and calls; acts on next-best-actions; uploads data"),
];

/// Permissions the platform itself checks.
pub const PLATFORM_PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "queue:read",
        description: "See job queues, jobs and their errors",
        roles: &["analyst", "sop_coordinator"],
    },
    PermissionSpec { name: "queue:manage", description: "Retry failed jobs", roles: &[] },
    PermissionSpec { name: "audit:read", description: "Read the audit trail", roles: &["executive"] },
    PermissionSpec {
        name: "users:manage",
        description: "Create users, disable them, set roles, reset passwords",
        roles: &[],
    },
    PermissionSpec { name: "apikeys:manage", description: "Create, list and revoke API keys", roles: &[] },
    PermissionSpec { name: "metrics:read", description: "Read Prometheus metrics", roles: &["analyst"] },
];

/// One role's permissions, as `GET /api/v1/auth/roles` shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// Role name.
    pub role: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Permissions it grants.
    pub permissions: Vec<&'static str>,
}

/// One permission, as `GET /api/v1/auth/roles` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionView {
    /// Name.
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
}

/// The merged role → permission table.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    permissions: BTreeMap<&'static str, &'static str>,
    by_role: BTreeMap<&'static str, BTreeSet<&'static str>>,
}

impl AccessPolicy {
    /// Merges permission specs; an unknown role or a permission declared twice is an error.
    pub fn new(specs: &[PermissionSpec]) -> anyhow::Result<Self> {
        let mut permissions = BTreeMap::new();
        let mut by_role: BTreeMap<&'static str, BTreeSet<&'static str>> =
            ROLES.iter().map(|(r, _)| (*r, BTreeSet::new())).collect();
        for spec in specs {
            if permissions.insert(spec.name, spec.description).is_some() {
                anyhow::bail!("permission {} is declared twice", spec.name);
            }
            by_role.get_mut("admin").expect("admin is a role").insert(spec.name);
            for role in spec.roles {
                by_role
                    .get_mut(role)
                    .ok_or_else(|| anyhow::anyhow!("permission {} names unknown role {role}", spec.name))?
                    .insert(spec.name);
            }
        }
        Ok(Self { permissions, by_role })
    }

    /// Whether `permission` is declared.
    pub fn is_known(&self, permission: &str) -> bool {
        self.permissions.contains_key(permission)
    }

    /// Whether `role` exists.
    pub fn is_role(role: &str) -> bool {
        ROLES.iter().any(|(r, _)| *r == role)
    }

    /// The permissions `roles` grant together.
    pub fn permissions_of<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        roles.into_iter().filter_map(|r| self.by_role.get(r)).flatten().map(|p| (*p).to_owned()).collect()
    }

    /// Every declared permission.
    pub fn permissions(&self) -> Vec<PermissionView> {
        self.permissions.iter().map(|(name, description)| PermissionView { name, description }).collect()
    }

    /// The table, role by role.
    pub fn roles(&self) -> Vec<RoleView> {
        ROLES
            .iter()
            .map(|(role, description)| RoleView {
                role,
                description,
                permissions: self.by_role.get(role).map(|s| s.iter().copied().collect()).unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_permission_and_roles_only_theirs() {
        let p = AccessPolicy::new(PLATFORM_PERMISSIONS).unwrap();
        let admin = p.permissions_of(["admin"]);
        assert!(PLATFORM_PERMISSIONS.iter().all(|s| admin.contains(s.name)));
        assert!(p.permissions_of(["viewer"]).is_empty());
        assert!(p.permissions_of(["executive"]).contains("audit:read"));
    }

    #[test]
    fn unknown_roles_and_duplicates_are_refused() {
        let bad = [PermissionSpec { name: "x:y", description: "", roles: &["wizard"] }];
        assert!(AccessPolicy::new(&bad).is_err());
        let twice = [PLATFORM_PERMISSIONS[0], PLATFORM_PERMISSIONS[0]];
        assert!(AccessPolicy::new(&twice).is_err());
    }
}
