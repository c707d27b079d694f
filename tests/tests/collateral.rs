//! Deposits and withdrawals: the collateral vault slice end to end.
use kestrel::state::PauseFlags;
use kestrel_sdk::ix;
use kestrel_tests::*;
use solana_sdk::signer::Signer;

#[tokio::test]
async fn deposit_withdraw_round_trip_moves_exact_amounts() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;

    h.deposit(&alice, 3 * ONE_TOKEN).await;
    assert_eq!(h.token_balance(&alice.token_account).await, 2 * ONE_TOKEN);
    assert_eq!(
        h.token_balance(&h.collateral_vault.clone()).await,
        3 * ONE_TOKEN
    );
    assert_eq!(
        h.collateral(&alice.margin_account).await,
        3 * ONE_TOKEN as i64
    );

    h.withdraw(&alice, ONE_TOKEN + 1).await;
    h.withdraw(&alice, 2 * ONE_TOKEN - 1).await;
    assert_eq!(h.token_balance(&alice.token_account).await, 5 * ONE_TOKEN);
    assert_eq!(h.token_balance(&h.collateral_vault.clone()).await, 0);
    assert_eq!(h.collateral(&alice.margin_account).await, 0);
    // Fee and insurance vaults are separate and untouched by collateral moves.
    assert_eq!(h.token_balance(&h.fee_vault.clone()).await, 0);
    assert_eq!(h.token_balance(&h.insurance_vault.clone()).await, 0);
    assert!(h.invariant_checks() >= 4);
}

#[tokio::test]
async fn many_users_keep_the_vault_equal_to_their_collateral() {
    let mut h = Harness::new().await;
    let mut users = Vec::new();
    for i in 1..=4u64 {
        let user = h.user(10 * ONE_TOKEN).await;
        h.deposit(&user, i * ONE_TOKEN + i).await;
        users.push(user);
    }
    h.withdraw(&users[1], ONE_TOKEN).await;
    h.withdraw(&users[3], 4 * ONE_TOKEN + 4).await;
    let vault = h.collateral_vault;
    assert_eq!(
        h.token_balance(&vault).await,
        (ONE_TOKEN + 1) + (ONE_TOKEN + 2) + (3 * ONE_TOKEN + 3)
    );
}

#[tokio::test]
async fn withdraw_more_than_the_balance_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, 2 * ONE_TOKEN).await;
    let too_much = ix::withdraw(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        2 * ONE_TOKEN + 1,
    );
    h.refused(
        "withdraw",
        &[too_much],
        &[&alice.key],
        error_code(KestrelError::InsufficientFreeCollateral),
    )
    .await;
    let everything = ix::withdraw(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        u64::MAX,
    );
    h.refused(
        "withdraw",
        &[everything],
        &[&alice.key],
        error_code(KestrelError::InsufficientFreeCollateral),
    )
    .await;
}

#[tokio::test]
async fn zero_amounts_are_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(ONE_TOKEN).await;
    let deposit = ix::deposit(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        0,
    );
    h.refused(
        "deposit",
        &[deposit],
        &[&alice.key],
        error_code(KestrelError::ZeroAmount),
    )
    .await;
    let withdraw = ix::withdraw(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        0,
    );
    h.refused(
        "withdraw",
        &[withdraw],
        &[&alice.key],
        error_code(KestrelError::ZeroAmount),
    )
    .await;
}

#[tokio::test]
async fn a_token_account_of_another_mint_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, ONE_TOKEN).await;

    let other_authority = solana_sdk::signature::Keypair::new();
    let other_mint = h
        .chain
        .create_mint(&other_authority.pubkey(), DECIMALS)
        .await;
    let foreign = h
        .chain
        .create_token_account(&other_mint, &alice.pubkey())
        .await;
    h.chain
        .mint_to(&other_mint, &other_authority, &foreign, 5 * ONE_TOKEN)
        .await;

    let deposit = ix::deposit(&alice.pubkey(), &alice.margin_account, &foreign, ONE_TOKEN);
    h.refused(
        "deposit",
        &[deposit],
        &[&alice.key],
        error_code(KestrelError::WrongMint),
    )
    .await;
    let withdraw = ix::withdraw(&alice.pubkey(), &alice.margin_account, &foreign, ONE_TOKEN);
    h.refused(
        "withdraw",
        &[withdraw],
        &[&alice.key],
        error_code(KestrelError::WrongMint),
    )
    .await;
    assert_eq!(h.chain.token_balance(&foreign).await, 5 * ONE_TOKEN);
}

#[tokio::test]
async fn a_token_account_posing_as_the_vault_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    let mallory = h.user(0).await;
    let mut deposit = ix::deposit(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        ONE_TOKEN,
    );
    // accounts::Deposit order: depositor, exchange, margin_account, collateral_vault, source, token_program
    deposit.accounts[3].pubkey = mallory.token_account;
    h.refused(
        "deposit",
        &[deposit],
        &[&alice.key],
        error_code(KestrelError::WrongVault),
    )
    .await;
}

#[tokio::test]
async fn someone_elses_margin_account_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    let mallory = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, 2 * ONE_TOKEN).await;

    let steal = ix::withdraw(
        &mallory.pubkey(),
        &alice.margin_account,
        &mallory.token_account,
        ONE_TOKEN,
    );
    h.refused(
        "withdraw",
        &[steal],
        &[&mallory.key],
        error_code(KestrelError::NotMarginAccountOwner),
    )
    .await;
    let credit = ix::deposit(
        &mallory.pubkey(),
        &alice.margin_account,
        &mallory.token_account,
        ONE_TOKEN,
    );
    h.refused(
        "deposit",
        &[credit],
        &[&mallory.key],
        error_code(KestrelError::NotOwnerOrDelegate),
    )
    .await;
    let close = ix::close_margin_account(&mallory.pubkey(), &alice.margin_account);
    h.refused(
        "close_margin_account",
        &[close],
        &[&mallory.key],
        error_code(KestrelError::NotMarginAccountOwner),
    )
    .await;
    let delegate = ix::set_delegate(
        &mallory.pubkey(),
        &alice.margin_account,
        Some(mallory.pubkey()),
    );
    h.refused(
        "set_delegate",
        &[delegate],
        &[&mallory.key],
        error_code(KestrelError::NotMarginAccountOwner),
    )
    .await;
}

#[tokio::test]
async fn a_missing_signer_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, 2 * ONE_TOKEN).await;

    // Alice's key is named but she did not sign: the program must refuse.
    let withdraw = without_signer(
        ix::withdraw(
            &alice.pubkey(),
            &alice.margin_account,
            &alice.token_account,
            ONE_TOKEN,
        ),
        &alice.pubkey(),
    );
    h.refused(
        "withdraw",
        &[withdraw],
        &[],
        error_code(AnchorErrorCode::AccountNotSigner),
    )
    .await;
    let close = without_signer(
        ix::close_margin_account(&alice.pubkey(), &alice.margin_account),
        &alice.pubkey(),
    );
    h.refused(
        "close_margin_account",
        &[close],
        &[],
        error_code(AnchorErrorCode::AccountNotSigner),
    )
    .await;
    let admin = h.admin.pubkey();
    let pause = without_signer(ix::set_pause(&admin, PauseFlags::WITHDRAW), &admin);
    h.refused(
        "set_pause",
        &[pause],
        &[],
        error_code(AnchorErrorCode::AccountNotSigner),
    )
    .await;
}

#[tokio::test]
async fn paused_operations_are_refused_until_unpaused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, 2 * ONE_TOKEN).await;

    h.set_pause(PauseFlags::WITHDRAW).await;
    let withdraw = ix::withdraw(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        ONE_TOKEN,
    );
    h.refused(
        "withdraw",
        std::slice::from_ref(&withdraw),
        &[&alice.key],
        error_code(KestrelError::WithdrawalsPaused),
    )
    .await;
    // Only withdrawals are paused: deposits still work.
    h.deposit(&alice, ONE_TOKEN).await;

    h.set_pause(PauseFlags::DEPOSIT | PauseFlags::WITHDRAW)
        .await;
    let deposit = ix::deposit(
        &alice.pubkey(),
        &alice.margin_account,
        &alice.token_account,
        ONE_TOKEN,
    );
    h.refused(
        "deposit",
        &[deposit],
        &[&alice.key],
        error_code(KestrelError::DepositsPaused),
    )
    .await;

    h.set_pause(0).await;
    h.ok("withdraw", &[withdraw], &[&alice.key]).await;
    assert_eq!(
        h.collateral(&alice.margin_account).await,
        2 * ONE_TOKEN as i64
    );
}
