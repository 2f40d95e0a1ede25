use super::*;

const MIB: i64 = 1024 * 1024;

fn server(name: &str, storage_mb: i64, cap_mb: Option<i64>, tenants: i64) -> PlanServer {
    PlanServer {
        load: ServerLoad {
            server_id: Uuid::now_v7(),
            name: name.into(),
            state: "active".into(),
            tenants,
            capacity: 1000,
            storage_bytes: Some(storage_mb * MIB),
            storage_estimate_bytes: Some(storage_mb * MIB),
            storage_capacity_mb: cap_mb,
            connections: Some(5),
            max_connections: Some(100),
            requests_per_hour: Some(0),
            requests_per_hour_capacity: None,
            utilisation: 0.0,
            sampled_at: None,
        },
        pinned_tiers: Vec::new(),
    }
}

fn tenant(on: &PlanServer, slug: &str, mb: i64) -> PlanTenant {
    PlanTenant {
        id: TenantId::generate(),
        slug: slug.into(),
        tier: Tier::Standard,
        server: on.load.server_id,
        storage_bytes: mb * MIB,
        requests_per_hour: 0,
    }
}

#[test]
fn a_skewed_pair_is_brought_under_the_target_by_the_smallest_move_that_suffices() {
    // 900 of 1000 MiB against 100 of 1000: 90 % and 10 %.
    let (hot, cold) = (
        server("hot", 900, Some(1000), 4),
        server("cold", 100, Some(1000), 1),
    );
    let tenants = vec![
        tenant(&hot, "big", 500),
        tenant(&hot, "mid", 250),
        tenant(&hot, "small", 120),
        tenant(&hot, "tiny", 30),
        tenant(&cold, "other", 100),
    ];
    let plan = plan(&[hot.clone(), cold.clone()], &tenants, 0.8);
    assert!(plan.unresolved.is_empty(), "{plan:?}");
    // 120 MiB is the least that takes 900 under 800.
    assert_eq!(plan.moves.len(), 1, "{plan:?}");
    assert_eq!(plan.moves[0].slug, "small");
    assert_eq!(plan.moves[0].to, cold.load.server_id);
    assert_eq!(plan.bytes, 120 * MIB);
    for s in &plan.servers {
        assert!(s.after <= 0.8, "{s:?}");
    }
}

#[test]
fn when_no_single_tenant_suffices_several_move_and_no_target_goes_over() {
    let (hot, a, b) = (
        server("hot", 950, Some(1000), 5),
        server("a", 600, Some(1000), 1),
        server("b", 600, Some(1000), 1),
    );
    let tenants: Vec<PlanTenant> = (0..9)
        .map(|i| tenant(&hot, &format!("t{i}"), 100))
        .collect();
    let plan = plan(&[hot, a, b], &tenants, 0.8);
    assert!(plan.unresolved.is_empty(), "{plan:?}");
    assert_eq!(plan.moves.len(), 2, "950 less two of 100 is 750: {plan:?}");
    assert_eq!(plan.bytes, 200 * MIB);
    for s in &plan.servers {
        assert!(s.after <= 0.8 + 1e-9, "{s:?}");
    }
}

#[test]
fn a_fleet_with_no_room_is_reported_unresolved_and_nothing_overfills() {
    let (hot, full) = (
        server("hot", 950, Some(1000), 2),
        server("full", 790, Some(1000), 1),
    );
    let tenants = vec![tenant(&hot, "a", 475), tenant(&hot, "b", 475)];
    let plan = plan(&[hot, full], &tenants, 0.8);
    assert!(plan.moves.is_empty(), "{plan:?}");
    assert_eq!(plan.unresolved.len(), 1);
    assert!(plan.unresolved[0].starts_with("hot"));
}

#[test]
fn a_pinned_tier_only_moves_to_servers_pinned_to_it_and_never_to_a_draining_one() {
    let hot = server("hot", 900, Some(1000), 2);
    let mut draining = server("draining", 0, Some(1000), 0);
    draining.load.state = "draining".into();
    let mut pinned = server("pinned-free", 0, Some(1000), 0);
    pinned.pinned_tiers = vec!["free".into()];
    let plain = server("plain", 0, Some(1000), 0);
    let mut t = tenant(&hot, "std", 300);
    t.tier = Tier::Standard;
    let plan = plan(&[hot, draining, pinned, plain.clone()], &[t], 0.8);
    assert_eq!(plan.moves.len(), 1, "{plan:?}");
    assert_eq!(plan.moves[0].to, plain.load.server_id);
}
