//! Margin account life cycle: create, delegate, close.
use anchor_lang::Discriminator;
use kestrel_sdk::{ix, pda};
use kestrel_tests::*;
use solana_sdk::signature::Keypair;
use solana_sdk::signer::Signer;

#[tokio::test]
async fn sub_accounts_are_separate_pdas_with_their_own_collateral() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    let create = ix::create_margin_account(&alice.pubkey(), 7, None);
    h.ok("create_margin_account", &[create], &[&alice.key])
        .await;
    let sub7 = pda::margin_account(&h.exchange, &alice.pubkey(), 7);

    h.ok(
        "deposit",
        &[ix::deposit(
            &alice.pubkey(),
            &sub7,
            &alice.token_account,
            ONE_TOKEN,
        )],
        &[&alice.key],
    )
    .await;
    let account = h.margin_account(&sub7).await;
    assert_eq!(account.sub_account_index, 7);
    assert_eq!(account.owner, alice.pubkey());
    assert_eq!(account.exchange, h.exchange);
    assert_eq!(account.collateral, ONE_TOKEN as i64);
    assert_eq!(h.collateral(&alice.margin_account).await, 0);

    // The same index twice: the account already exists.
    let again = ix::create_margin_account(&alice.pubkey(), 7, None);
    h.refused_with(
        "create_margin_account",
        &[again],
        &[&alice.key],
        REINIT_REFUSAL,
    )
    .await;
}

#[tokio::test]
async fn close_with_a_balance_left_is_refused_and_empty_close_refunds_rent() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    h.deposit(&alice, 1).await;

    let close = ix::close_margin_account(&alice.pubkey(), &alice.margin_account);
    h.refused(
        "close_margin_account",
        std::slice::from_ref(&close),
        &[&alice.key],
        error_code(KestrelError::MarginAccountNotEmpty),
    )
    .await;

    h.withdraw(&alice, 1).await;
    let rent = h.chain.lamports(&alice.margin_account).await;
    assert!(rent > 0);
    let lamports_before = h.chain.lamports(&alice.pubkey()).await;
    h.ok("close_margin_account", &[close], &[&alice.key]).await;
    assert!(h.chain.account(&alice.margin_account).await.is_none());
    // The payer of the transaction fee is the chain's payer, so the owner gets the rent exactly.
    assert_eq!(
        h.chain.lamports(&alice.pubkey()).await,
        lamports_before + rent
    );

    // The index can be used again, from zero.
    let create = ix::create_margin_account(&alice.pubkey(), 0, None);
    h.ok("create_margin_account", &[create], &[&alice.key])
        .await;
    assert_eq!(h.collateral(&alice.margin_account).await, 0);
}

#[tokio::test]
async fn a_delegate_may_deposit_but_never_withdraw_or_close() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    let bot = Keypair::new();
    h.chain.fund(&bot.pubkey(), 1_000_000_000).await;
    let bot_tokens = h.token_account(&bot.pubkey(), 3 * ONE_TOKEN).await;

    let set = ix::set_delegate(&alice.pubkey(), &alice.margin_account, Some(bot.pubkey()));
    h.ok("set_delegate", &[set], &[&alice.key]).await;
    assert_eq!(
        h.margin_account(&alice.margin_account.clone())
            .await
            .delegate,
        bot.pubkey()
    );

    let deposit = ix::deposit(
        &bot.pubkey(),
        &alice.margin_account,
        &bot_tokens,
        2 * ONE_TOKEN,
    );
    h.ok("deposit", &[deposit], &[&bot]).await;
    assert_eq!(
        h.collateral(&alice.margin_account).await,
        2 * ONE_TOKEN as i64
    );

    let withdraw = ix::withdraw(&bot.pubkey(), &alice.margin_account, &bot_tokens, ONE_TOKEN);
    h.refused(
        "withdraw",
        &[withdraw],
        &[&bot],
        error_code(KestrelError::NotMarginAccountOwner),
    )
    .await;
    let close = ix::close_margin_account(&bot.pubkey(), &alice.margin_account);
    h.refused(
        "close_margin_account",
        &[close],
        &[&bot],
        error_code(KestrelError::NotMarginAccountOwner),
    )
    .await;

    // Cleared delegate: the bot can no longer deposit.
    let clear = ix::set_delegate(&alice.pubkey(), &alice.margin_account, None);
    h.ok("set_delegate", &[clear], &[&alice.key]).await;
    let deposit = ix::deposit(&bot.pubkey(), &alice.margin_account, &bot_tokens, ONE_TOKEN);
    h.refused(
        "deposit",
        &[deposit],
        &[&bot],
        error_code(KestrelError::NotOwnerOrDelegate),
    )
    .await;
}

#[tokio::test]
async fn the_owner_cannot_be_its_own_delegate() {
    let mut h = Harness::new().await;
    let alice = h.user(0).await;
    let create = ix::create_margin_account(&alice.pubkey(), 1, Some(alice.pubkey()));
    h.refused(
        "create_margin_account",
        &[create],
        &[&alice.key],
        error_code(KestrelError::DelegateIsOwner),
    )
    .await;
    let set = ix::set_delegate(&alice.pubkey(), &alice.margin_account, Some(alice.pubkey()));
    h.refused(
        "set_delegate",
        &[set],
        &[&alice.key],
        error_code(KestrelError::DelegateIsOwner),
    )
    .await;
}

#[tokio::test]
async fn an_exchange_account_posing_as_a_margin_account_is_refused() {
    let mut h = Harness::new().await;
    let alice = h.user(5 * ONE_TOKEN).await;
    // Type cosplay: a Kestrel-owned account of another type.
    let exchange = h.exchange;
    let withdraw = ix::withdraw(&alice.pubkey(), &exchange, &alice.token_account, 1);
    h.refused(
        "withdraw",
        &[withdraw],
        &[&alice.key],
        error_code(AnchorErrorCode::AccountDiscriminatorMismatch),
    )
    .await;
    // Sanity: the discriminators really differ.
    assert_ne!(
        kestrel::state::Exchange::DISCRIMINATOR,
        kestrel::state::MarginAccount::DISCRIMINATOR
    );
}
