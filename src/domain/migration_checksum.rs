/// A tenant migration's identity across the fleet: refinery's checksum of
/// its version, name and SQL, as 16 hex digits. Two files with one version
/// and different checksums are two different schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationChecksum {
    pub version: i32,
    pub name: String,
    pub checksum: String,
}
