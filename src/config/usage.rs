//! `usage.*`: how often requests are flushed and databases sampled, and how
//! long hourly usage is kept before it is rolled up into days.

section! {
    pub struct UsageSettings {
        /// Seconds between flushes of each replica's request counts to the
        /// catalog (one row per tenant and hour). `TENANT_PLANE_USAGE_FLUSH_SECS`,
        /// default 60.
        pub flush_secs: u64 = 60,
        /// Seconds between samples of every tenant database's size and
        /// counters (one replica samples, at most 2 sessions per server): a
        /// tenant over its storage quota is found within this long.
        /// `TENANT_PLANE_USAGE_SAMPLE_SECS`, default 300.
        pub sample_secs: u64 = 300,
        /// Days hourly usage is kept; older hours are rolled up into days.
        /// `TENANT_PLANE_USAGE_HOURLY_RETENTION_DAYS`, default 35.
        pub hourly_retention_days: u32 = 35,
        /// Count each tenant's requests (and so hold the monthly request
        /// quota); off, only sampled usage is kept. `TENANT_PLANE_USAGE_METER_REQUESTS`,
        /// default true.
        pub meter_requests: bool = true,
    }
}
