use kestrel_sim::chain::ProgramMode;

#[tokio::test]
async fn the_demo_refuses_what_it_must_and_reconciles_the_vault() {
    let report = kestrel_sim::demo::run(ProgramMode::from_env()).await;
    assert_eq!(
        report.refusals,
        [
            "bob withdraws 3,000: InsufficientFreeCollateral",
            "bob withdraws from alice's account: NotMarginAccountOwner",
            "carol withdraws while paused: WithdrawalsPaused",
        ]
    );
    assert!(report.conservation_held, "{}", report.text);
    assert_eq!(
        report.migration_steps,
        [1, 0],
        "one market created, then nothing to do"
    );
    // alice 5,000 - 1,200 and bob 2,500 remain; carol closed her account.
    assert!(
        report
            .text
            .contains("Vault 6,300.000000 = collateral 6,300.000000"),
        "{}",
        report.text
    );
    assert!(report.text.contains("(closed)"), "{}", report.text);
}
