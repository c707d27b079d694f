//! The exchange: initialisation, two-step admin transfer, pause flags.
use kestrel::state::PauseFlags;
use kestrel_sdk::ix;
use kestrel_sim::chain::ProgramMode;
use kestrel_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

#[tokio::test]
async fn init_records_the_admin_mint_and_vaults_once() {
    let mut h = Harness::new().await;
    let exchange = h.exchange_state().await;
    assert_eq!(exchange.admin, h.admin.pubkey());
    assert_eq!(exchange.collateral_mint, h.mint);
    assert_eq!(exchange.collateral_vault, h.collateral_vault);
    assert_eq!(exchange.fee_vault, h.fee_vault);
    assert_eq!(exchange.insurance_vault, h.insurance_vault);
    assert_eq!(exchange.collateral_decimals, DECIMALS);
    assert_eq!(exchange.pause_flags, 0);
    for vault in [h.collateral_vault, h.fee_vault, h.insurance_vault] {
        let account = h.chain.account(&vault).await.unwrap();
        assert_eq!(account.owner, anchor_spl::token::ID);
        assert_eq!(h.chain.token_balance(&vault).await, 0);
    }

    // A second init, even by the admin, fails: the exchange account already exists.
    let admin = h.admin.insecure_clone();
    let init = h.init_exchange_ix(&admin.pubkey());
    h.refused_with("init_exchange", &[init], &[&admin], REINIT_REFUSAL)
        .await;
    assert_eq!(h.exchange_state().await.admin, h.admin.pubkey());
}

#[tokio::test]
async fn only_the_upgrade_authority_may_initialise_the_exchange() {
    let mut h = Harness::without_exchange().await;
    if h.mode() == ProgramMode::Native {
        // A native builtin has no upgrade authority; the .so run checks this.
        assert_eq!(h.chain.program_data(), None);
        return;
    }
    let mallory = Keypair::new();
    h.chain.fund(&mallory.pubkey(), 1_000_000_000).await;
    let front_run = h.init_exchange_ix(&mallory.pubkey());
    h.refused(
        "init_exchange",
        &[front_run],
        &[&mallory],
        error_code(KestrelError::NotUpgradeAuthority),
    )
    .await;
    // Leaving ProgramData out does not skip the check.
    let admin = h.admin.insecure_clone();
    let without_program_data = ix::init_exchange(&admin.pubkey(), &h.mint, None);
    h.refused(
        "init_exchange",
        &[without_program_data],
        &[&admin],
        error_code(KestrelError::NotUpgradeAuthority),
    )
    .await;
    // Neither does an account that is not ProgramData (here the mint).
    let fake = ix::init_exchange(&admin.pubkey(), &h.mint, Some(h.mint));
    h.refused(
        "init_exchange",
        &[fake],
        &[&admin],
        error_code(AnchorErrorCode::AccountOwnedByWrongProgram),
    )
    .await;

    let init = h.init_exchange_ix(&admin.pubkey());
    h.ok("init_exchange", &[init], &[&admin]).await;
    assert_eq!(h.exchange_state().await.admin, admin.pubkey());
}

#[tokio::test]
async fn admin_transfer_takes_two_steps_and_refuses_everyone_else() {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let mallory = Keypair::new();
    let successor = Keypair::new();
    h.chain.fund(&mallory.pubkey(), 1_000_000_000).await;
    h.chain.fund(&successor.pubkey(), 1_000_000_000).await;

    let usurp = ix::propose_admin(&mallory.pubkey(), &mallory.pubkey());
    h.refused(
        "propose_admin",
        &[usurp],
        &[&mallory],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let accept = ix::accept_admin(&mallory.pubkey());
    h.refused(
        "accept_admin",
        &[accept],
        &[&mallory],
        error_code(KestrelError::NoPendingAdmin),
    )
    .await;

    h.ok(
        "propose_admin",
        &[ix::propose_admin(&admin.pubkey(), &successor.pubkey())],
        &[&admin],
    )
    .await;
    assert_eq!(h.exchange_state().await.pending_admin, successor.pubkey());
    let accept = ix::accept_admin(&mallory.pubkey());
    h.refused(
        "accept_admin",
        &[accept],
        &[&mallory],
        error_code(KestrelError::NotPendingAdmin),
    )
    .await;

    h.ok(
        "accept_admin",
        &[ix::accept_admin(&successor.pubkey())],
        &[&successor],
    )
    .await;
    let exchange = h.exchange_state().await;
    assert_eq!(exchange.admin, successor.pubkey());
    assert_eq!(
        exchange.pending_admin,
        solana_sdk::pubkey::Pubkey::default()
    );

    // The old admin has lost every power.
    let pause = ix::set_pause(&admin.pubkey(), PauseFlags::DEPOSIT);
    h.refused(
        "set_pause",
        &[pause],
        &[&admin],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    h.ok(
        "set_pause",
        &[ix::set_pause(&successor.pubkey(), PauseFlags::DEPOSIT)],
        &[&successor],
    )
    .await;
    assert_eq!(h.exchange_state().await.pause_flags, PauseFlags::DEPOSIT);
}

#[tokio::test]
async fn a_proposal_can_be_withdrawn() {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let successor = Keypair::new();
    h.chain.fund(&successor.pubkey(), 1_000_000_000).await;
    h.ok(
        "propose_admin",
        &[ix::propose_admin(&admin.pubkey(), &successor.pubkey())],
        &[&admin],
    )
    .await;
    let none = solana_sdk::pubkey::Pubkey::default();
    h.ok(
        "propose_admin",
        &[ix::propose_admin(&admin.pubkey(), &none)],
        &[&admin],
    )
    .await;
    let accept = ix::accept_admin(&successor.pubkey());
    h.refused(
        "accept_admin",
        &[accept],
        &[&successor],
        error_code(KestrelError::NoPendingAdmin),
    )
    .await;
}

#[tokio::test]
async fn pause_flags_are_admin_only_and_unknown_bits_are_refused() {
    let mut h = Harness::new().await;
    let admin = h.admin.insecure_clone();
    let mallory = h.user(0).await;
    let pause = ix::set_pause(&mallory.pubkey(), PauseFlags::ALL);
    h.refused(
        "set_pause",
        &[pause],
        &[&mallory.key],
        error_code(KestrelError::NotAdmin),
    )
    .await;
    let unknown = ix::set_pause(&admin.pubkey(), PauseFlags::ALL + 1);
    h.refused(
        "set_pause",
        &[unknown],
        &[&admin],
        error_code(KestrelError::UnknownPauseFlag),
    )
    .await;
    h.set_pause(PauseFlags::ALL).await;
    assert_eq!(h.exchange_state().await.pause_flags, PauseFlags::ALL);
}
