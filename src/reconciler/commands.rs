//! `doctor --fix` as a command: the repairs it makes are changes, so they
//! run under the caller's audit record, written first (repairs whose
//! record cannot be written are not made). A check alone changes nothing
//! and is not recorded.

use super::{DoctorMode, DoctorReport, Reconciler};
use crate::control_audit::{audited, Actor, Change};
use crate::tenants::TenantsError;

impl Reconciler {
    /// Runs the doctor in `mode` for `actor`.
    pub async fn doctor_as(
        &self,
        actor: &Actor,
        mode: DoctorMode,
    ) -> Result<DoctorReport, TenantsError> {
        let action = match mode {
            DoctorMode::Check => return self.doctor_with(mode).await,
            DoctorMode::Fix => "doctor.fix",
            DoctorMode::FixAndPurge => "doctor.fix_confirm",
        };
        let what = Change {
            tenant: None,
            action,
            resource: "servers",
        };
        let catalog = self.tenants.catalog();
        audited(catalog, actor, what, self.doctor_with(mode), |_| None).await
    }
}
