use std::fmt;

use super::TenantId;

/// Prefix of every tenant database and tenant login role.
pub const TENANT_DB_PREFIX: &str = "ai_care_tenant_";

/// Name of the template database each server keeps at the newest schema.
pub const TEMPLATE_DB: &str = "ai_care_tenant_template";

/// Group role that holds the table privileges of tenant databases; each tenant
/// role is a member. It has no CONNECT on any tenant database.
pub const TENANT_APP_ROLE: &str = "ai_care_tenant_app";

/// Group role that holds SELECT alone on the tenant tables: read-only
/// sessions log in to a member of its tenant's reader (`DbName::reader`), and a tenant role
/// whose writes are paused is moved into it from `TENANT_APP_ROLE`.
pub const TENANT_READER_ROLE: &str = "ai_care_tenant_reader";

/// Group role with no privileges whose members are the tenant roles whose
/// writes are paused (a move's copy): the mark a pause leaves that no
/// client can set or clear (a role's own settings, it can).
pub const TENANT_PAUSED_ROLE: &str = "ai_care_tenant_paused";

/// Suffix of the tenant's gateway writer login (`DbName::wire_writer`).
/// Tenant databases refuse audit entries from a session user with it
/// (tenant migration V5), so it must match that SQL.
pub const WIRE_WRITER_SUFFIX: &str = "_wire";

/// Prefix of every subtenant's login role (`subtenant_login`). Tenant
/// databases' row-level security reads the subtenant from a session user
/// with this prefix (tenant migration V3), so it must match that SQL.
pub const SUBTENANT_LOGIN_PREFIX: &str = "ai_care_sub_";

/// A subtenant's login role: `ai_care_sub_<32 hex of its id>`, or with
/// `_reader` for its read-only one (51 bytes). A member of its root's
/// tenant role (or reader), whose privileges and CONNECT it inherits; the
/// tenant database's policies hold its sessions to the subtenant its name
/// carries, whatever the session sets. Derived from the id, never input.
pub fn subtenant_login(subtenant: TenantId, read_only: bool) -> String {
    let suffix = if read_only { "_reader" } else { "" };
    format!("{SUBTENANT_LOGIN_PREFIX}{}{suffix}", subtenant.simple())
}

/// A tenant database or role name: `ai_care_tenant_<32 hex>`, 47 bytes, always
/// derived from a `TenantId`, never taken from input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DbName(String);

impl DbName {
    pub fn for_tenant(id: TenantId) -> Self {
        Self(format!("{TENANT_DB_PREFIX}{}", id.simple()))
    }

    /// Recognises a name this crate made, e.g. when listing a server's
    /// databases. Anything else (the template included) is `None`.
    pub fn recognise(name: &str) -> Option<Self> {
        let hex = name.strip_prefix(TENANT_DB_PREFIX)?;
        let ok = hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant a name this crate made belongs to, and which copy it is:
    /// the tenant's own database or role (`Live`), a restore's staged or
    /// retired copy, or a copy `doctor --fix` quarantined. Anything else
    /// (the template included) is `None`.
    pub fn owner_of(name: &str) -> Option<(TenantId, DbCopy)> {
        let rest = name.strip_prefix(TENANT_DB_PREFIX)?;
        let (hex, copy) = match rest.split_once('_') {
            None => (rest, DbCopy::Live),
            Some((hex, "restore")) => (hex, DbCopy::Staged),
            Some((hex, "old")) => (hex, DbCopy::Retired),
            Some((hex, "quarantined")) => (hex, DbCopy::Quarantined),
            Some(_) => return None,
        };
        let ok = hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return None;
        }
        let id = uuid::Uuid::parse_str(hex).ok()?;
        Some((TenantId::from(id), copy))
    }

    /// The tenant's read-only group on a server: a member of
    /// `TENANT_READER_ROLE` with CONNECT on the tenant's database alone,
    /// 54 bytes. It cannot log in (since tenant-plane made every group
    /// `NOLOGIN`): its members may `SET ROLE` to it, and a role may change
    /// its own password and settings. `owner_of` does not claim it: it goes
    /// with the tenant role.
    pub fn reader(&self) -> String {
        format!("{}_reader", self.0)
    }

    /// The login role of the tenant's HTTP data plane on a server: a member
    /// of the tenant role (a `NOLOGIN` group), whose rights and CONNECT it
    /// inherits, 52 bytes. No other role is a member of it, so no client
    /// can become it or change its password or settings.
    pub fn http_login(&self) -> String {
        format!("{}_http", self.0)
    }

    /// The login role of the tenant's writing gateway sessions on a server:
    /// a member of the tenant role, whose rights and CONNECT it inherits,
    /// 52 bytes. Its name keeps its sessions from writing the audit log
    /// (tenant migration V5), which the HTTP plane's sessions write.
    /// `owner_of` does not claim it: it goes with the tenant role.
    pub fn wire_writer(&self) -> String {
        format!("{}{WIRE_WRITER_SUFFIX}", self.0)
    }

    /// The login role of the tenant's read-only gateway sessions on a
    /// server: a member of the reader group, 59 bytes.
    pub fn wire_reader(&self) -> String {
        format!("{}{WIRE_WRITER_SUFFIX}_reader", self.0)
    }

    /// Every login role of the tenant's own on a server (its subtenants'
    /// aside), and the tenant role and reader, which were logins before
    /// tenant-plane made them groups.
    pub fn logins(&self) -> Vec<String> {
        vec![
            self.0.clone(),
            self.reader(),
            self.http_login(),
            self.wire_writer(),
            self.wire_reader(),
        ]
    }

    /// The writing logins among `logins`: those a move's pause ends.
    pub fn writer_logins(&self) -> Vec<String> {
        vec![self.0.clone(), self.http_login(), self.wire_writer()]
    }

    /// Where a restore lands before it replaces the tenant's database.
    pub fn staging(&self) -> String {
        format!("{}_restore", self.0)
    }

    /// The replaced database, kept until a restore's swap is done.
    pub fn retired(&self) -> String {
        format!("{}_old", self.0)
    }

    /// Where `doctor --fix` parks a copy the catalog does not need, instead
    /// of dropping it: one per tenant and server, 59 bytes.
    pub fn quarantined(&self) -> String {
        format!("{}_quarantined", self.0)
    }
}

/// Which copy of a tenant's database a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbCopy {
    Live,
    /// A restore's copy before it takes the tenant's name.
    Staged,
    /// The database a restore replaced, before it is dropped.
    Retired,
    /// An orphan `doctor --fix` renamed out of the way; dropped only after
    /// the retention, on `--fix --confirm`.
    Quarantined,
}

impl fmt::Display for DbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_database_name_is_derived_and_fits_postgres_limits() {
        let id = TenantId::generate();
        let name = DbName::for_tenant(id);
        assert_eq!(name.as_str().len(), 47);
        assert_eq!(DbName::recognise(name.as_str()), Some(name));
        assert_eq!(DbName::recognise(TEMPLATE_DB), None);
        assert_eq!(DbName::recognise("ai_care_tenant_XYZ"), None);
    }

    #[test]
    fn every_copy_of_a_tenant_database_names_its_tenant() {
        let id = TenantId::generate();
        let name = DbName::for_tenant(id);
        assert_eq!(DbName::owner_of(name.as_str()), Some((id, DbCopy::Live)));
        assert_eq!(
            DbName::owner_of(&name.staging()),
            Some((id, DbCopy::Staged))
        );
        assert_eq!(
            DbName::owner_of(&name.retired()),
            Some((id, DbCopy::Retired))
        );
        assert_eq!(
            DbName::owner_of(&name.quarantined()),
            Some((id, DbCopy::Quarantined))
        );
        // PostgreSQL cuts names at 63 bytes: a longer one would not round-trip.
        assert!(name.quarantined().len() <= 63);
        assert_eq!(DbName::owner_of(TEMPLATE_DB), None);
        assert_eq!(DbName::owner_of(crate::domain::TENANT_APP_ROLE), None);
        assert_eq!(DbName::owner_of(&format!("{}_other", name.as_str())), None);
        assert_eq!(DbName::owner_of(&name.reader()), None);
        assert!(name.reader().len() <= 63);
        assert_eq!(DbName::owner_of(&name.wire_writer()), None);
        assert_eq!(name.wire_writer().len(), 52);
        // V5's policy: right(session_user, 5) <> '_wire'.
        assert!(name.wire_writer().ends_with(WIRE_WRITER_SUFFIX));
        assert_eq!(WIRE_WRITER_SUFFIX.len(), 5);
        for login in name.logins().iter().skip(1) {
            assert_eq!(DbName::owner_of(login), None, "{login}");
            assert!(login.len() <= 63, "{login}");
        }
        assert!(!name.wire_reader().ends_with(WIRE_WRITER_SUFFIX));
    }

    #[test]
    fn a_subtenant_login_carries_its_subtenant_where_the_tenant_schema_reads_it() {
        let sub = TenantId::generate();
        for read_only in [false, true] {
            let login = subtenant_login(sub, read_only);
            assert!(login.len() <= 63);
            assert_eq!(DbName::owner_of(&login), None);
            // V3's app_subtenant_id(): substr(session_user, 13, 32)::uuid.
            let hex = &login[SUBTENANT_LOGIN_PREFIX.len()..SUBTENANT_LOGIN_PREFIX.len() + 32];
            assert_eq!(SUBTENANT_LOGIN_PREFIX.len(), 12);
            assert_eq!(uuid::Uuid::parse_str(hex).unwrap(), sub.as_uuid());
        }
    }
}
