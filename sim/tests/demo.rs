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
            "bob bids for 200 SOL: InsufficientHealth",
        ]
    );
    assert!(report.conservation_held, "{}", report.text);
    assert_eq!(
        report.migration_steps,
        [1, 0],
        "one market created, then nothing to do"
    );
    // alice 5,000 - 1,200 and bob 2,500 remain less the fees that went to
    // the fee vault: bob's 0.075 taker fee less alice's 0.03 rebate and the
    // 0.0001 crank reward (paid to bob's account); carol closed her account.
    for line in [
        "Vault 6,299.955100 = collateral 6,299.955100",
        "alice    market 0: -100 lots",
        "bob      market 0: +100 lots",
        "Fee vault 0.044900",
    ] {
        assert!(report.text.contains(line), "{line}\n{}", report.text);
    }
    assert!(report.text.contains("(closed)"), "{}", report.text);
}
