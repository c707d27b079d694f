use kestrel_sim::chain::ProgramMode;

#[tokio::test]
async fn the_demo_refuses_what_it_must_liquidates_and_reconciles_the_vault() {
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
        [4, 0],
        "one underlying and one market on it created, the lookup table created and extended, then nothing to do"
    );
    // Dave's 9 SOL long is partly liquidated by the keeper once the oracle
    // reaches 138, down to what restores health halfway between maintenance
    // and initial margin; natively and on the SBF build alike.
    assert_eq!(report.liquidations, ["dave: +900 -> +148 lots in market 0"]);
    assert!(report.funding_updates >= 2, "{}", report.text);
    // Every cycle after a new oracle price refreshes the underlying first
    // (the 7 cycles after the 7 publications); the one cycle with nothing
    // newer and a price still current sends none.
    assert_eq!(report.underlying_refreshes, 7, "{}", report.text);
    for line in [
        // Bob's 0.075 taker fee less alice's 0.03 rebate and the 0.0001
        // crank reward, swept before the keeper ran.
        "Fee vault 0.044900",
        "Trades     4 fills",
        // 500 staked plus 40% of the 2.5% fee on 752 lots at 138.
        "Insurance  510.377600 in the fund",
        // Once bob bids 137.00 inside the band, the keeper sells the 752
        // lots it took over; bob's stale 151.00 bid leaves the book unfilled.
        "Unwinds    1\n  keeper: +752 -> +0 lots in market 0",
        "Keeper     8 cycles, 4 events consumed, 0 races, 0 refusals, 0 bankruptcies, 7 underlying refreshes",
        "Vault 11,439.577500 = collateral 11,341.103726",
        "alice    market 0: -1000 lots",
        "bob      market 0: +852 lots",
        "dave     market 0: +148 lots",
        "Base positions net to 0 lots",
    ] {
        assert!(report.text.contains(line), "{line}\n{}", report.text);
    }
    assert!(report.text.contains("(closed)"), "{}", report.text);
}
