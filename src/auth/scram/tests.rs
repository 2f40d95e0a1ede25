//! The server side against tokio-postgres's own client (postgres-protocol),
//! and against messages an attacker would send.

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

use super::*;

const KEY: &str =
    "tpk_0011223344556677_aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";

fn tenant() -> TenantId {
    TenantId::from(uuid::Uuid::from_u128(7))
}

/// Runs a whole login of `password` against `keys`; the matched index.
fn login(password: &str, keys: &[&WireVerifier]) -> Result<usize, ScramError> {
    let mut client = ScramSha256::new(password.as_bytes(), ChannelBinding::unrequested());
    let first = std::str::from_utf8(client.message()).unwrap().to_string();
    let (exchange, server_first) = Exchange::start(&first, &tenant_salt(tenant()))?;
    client.update(server_first.as_bytes()).unwrap();
    let last = std::str::from_utf8(client.message()).unwrap().to_string();
    let (index, server_final) = exchange.finish(&last, keys)?;
    // The client checks the server's signature: the server knew the key.
    client.finish(server_final.as_bytes()).unwrap();
    Ok(index)
}

#[test]
fn the_real_client_logs_in_with_the_key_and_finds_the_server_genuine() {
    let salt = tenant_salt(tenant());
    let other = verifier("tpk_other_key", &salt);
    let ours = verifier(KEY, &salt);
    assert_eq!(login(KEY, &[&other, &ours]), Ok(1));
    assert_eq!(login(KEY, &[&ours]), Ok(0));
}

#[test]
fn a_wrong_key_or_a_key_of_no_candidate_is_refused() {
    let salt = tenant_salt(tenant());
    let ours = verifier(KEY, &salt);
    assert_eq!(login("tpk_guess", &[&ours]), Err(ScramError::Refused));
    assert_eq!(login(KEY, &[]), Err(ScramError::Refused));
    // The same key under another tenant's salt is another verifier.
    let elsewhere = verifier(KEY, &tenant_salt(TenantId::from(uuid::Uuid::from_u128(8))));
    assert_eq!(login(KEY, &[&elsewhere]), Err(ScramError::Refused));
}

#[test]
fn a_verifier_matches_one_computed_independently() {
    // RFC 7677's password and salt at 4096 iterations (Python's hashlib).
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let v = verifier("pencil", &salt);
    assert_eq!(
        STANDARD.encode(v.stored_key),
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
    );
    assert_eq!(
        STANDARD.encode(v.server_key),
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    );
}

#[test]
fn malformed_replayed_and_channel_bound_messages_are_refused() {
    let salt = tenant_salt(tenant());
    let ours = verifier(KEY, &salt);
    for bad in [
        "",
        "n",
        "n,,",
        "x,,n=,r=abc",
        "n,a=admin,n=,r=abc",
        "n,,n=,r=",
    ] {
        assert!(Exchange::start(bad, &salt).is_err(), "{bad:?} was taken");
    }
    assert_eq!(
        Exchange::start("p=tls-server-end-point,,n=,r=abc", &salt).err(),
        Some(ScramError::ChannelBinding)
    );
    let (exchange, _) = Exchange::start("n,,n=,r=abc", &salt).unwrap();
    // The nonce must be the server's, and the binding the header sent.
    let proof = STANDARD.encode([0u8; 32]);
    assert_eq!(
        exchange
            .finish(&format!("c=biws,r=abc,p={proof}"), &[&ours])
            .err(),
        Some(ScramError::Nonce)
    );
    let nonce = exchange.nonce.clone();
    assert_eq!(
        exchange
            .finish(&format!("c=eSws,r={nonce},p={proof}"), &[&ours])
            .err(),
        Some(ScramError::ChannelBinding)
    );
    assert_eq!(
        exchange
            .finish(&format!("c=biws,r={nonce},p=short"), &[&ours])
            .err(),
        Some(ScramError::Malformed("bad proof"))
    );
    assert_eq!(
        exchange
            .finish(&format!("c=biws,r={nonce},p={proof}"), &[&ours])
            .err(),
        Some(ScramError::Refused)
    );
}

#[test]
fn salts_differ_by_tenant_and_never_name_a_tenant_for_an_unknown_user() {
    let a = tenant_salt(tenant());
    assert_ne!(a, tenant_salt(TenantId::from(uuid::Uuid::from_u128(8))));
    assert_eq!(unknown_salt("acme"), unknown_salt("acme"));
    assert_ne!(unknown_salt("acme"), unknown_salt("acne"));
}
