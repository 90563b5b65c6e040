//! `sbactl number test NUMBER --user NAME`: what sba-mediation would do with a dialled number,
//! decided by the same code from the same [mediation] configuration.
use anyhow::Result;
use holdfast_runtime::config::Loaded;
use sba_mediation::config::Config;
use sba_mediation::routing::Plan;
use std::path::Path;

/// Loads the configuration: FILE, else /etc/sba/sba.toml when present, else sba-mediation's
/// embedded default.
pub fn load(config: Option<&Path>) -> Result<Config> {
    let appliance = Path::new(crate::APPLIANCE_CONFIG);
    Ok(Config::load_or_embedded(config.or(appliance.exists().then_some(appliance)))?)
}

/// Prints the decision; false when the call would be refused.
pub fn test(plan: &Plan, number: &str, user: &str, caller: Option<&str>) -> bool {
    let caller = caller.unwrap_or(user);
    println!("dialled:    {number}");
    let policy = plan.policy_of(user);
    match policy {
        Some(p) => println!("user:       {user} (policy {}: {})", p.name, p.usages.join(", ")),
        None => println!("user:       {user} (no policy)"),
    }
    match plan.dial_plan.normalize(number) {
        Ok(n) => println!("normalized: {n} ({})", n.rule.as_deref().map_or("already E.164".to_string(), |r| format!("rule {r}"))),
        Err(e) => println!("normalized: no ({e})"),
    }
    let out = match plan.outbound(user, caller, number) {
        Ok(out) => out,
        Err(refusal) => {
            println!("refused:    {} {}", refusal.status, refusal.reason);
            return false;
        }
    };
    println!("usage:      {}", out.usage);
    println!("route:      {}", out.route);
    println!("caller:     {}", out.caller.as_deref().unwrap_or("none (sent anonymous, Privacy: id)"));
    for (i, leg) in out.legs.iter().enumerate() {
        let trunk = plan.trunk(&leg.trunk);
        let head = if i == 0 { "trunks:" } else { "" };
        println!(
            "{head:<11} {}. {} ({} {} {}{}) called {}{}, calling {}{}",
            i + 1,
            leg.trunk,
            trunk.map_or("?", |t| t.kind.as_str()),
            trunk.map_or("?".to_string(), |t| t.address.to_string()),
            trunk.map_or("?", |t| t.transport.as_str()),
            if trunk.is_some_and(|t| t.media_bypass) { ", media bypass" } else { "" },
            leg.called,
            leg.called_rule.as_ref().map_or(String::new(), |r| format!(" (rule {r})")),
            leg.calling.as_deref().unwrap_or("anonymous"),
            leg.calling_rule.as_ref().map_or(String::new(), |r| format!(" (rule {r})")),
        );
    }
    true
}
