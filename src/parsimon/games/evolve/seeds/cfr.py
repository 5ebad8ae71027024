"""Vanilla CFR in the per-infoset interface (regret matching, uniform averaging)."""


class RegretAccumulator:
    def update_accumulate_regret(self, info_state_node, iteration_number, cfr_regrets):
        """Add the instantaneous regrets (no flooring)."""
        return {
            a: info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a]
            for a in info_state_node.legal_actions
        }


class PolicyFromRegretAccumulator:
    def get_updated_current_policy(self, info_state_node, iteration_number, cfr_regrets, previous_policy):
        """Regret matching on the positive part of the cumulative regrets."""
        acts = info_state_node.legal_actions
        pos = {a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0)) for a in acts}
        total = sum(pos.values())
        if total > 0:
            return {a: pos[a] / total for a in acts}
        return {a: 1.0 / len(acts) for a in acts}


class PolicyAccumulator:
    def update_accumulate_policy(self, info_state_node, iteration_number, info_state_policy, cfr_regrets,
                                 reach_prob, counterfactual_reach_prob):
        """Uniform averaging: weight 1 times the player's own reach."""
        w = 1.0 * reach_prob
        return {
            a: info_state_node.cumulative_policy.get(a, 0.0) + w * info_state_policy[a]
            for a in info_state_node.legal_actions
        }
