"""CFR+ in the per-infoset interface (the seed program of the evolutionary search)."""


class RegretAccumulator:
    def update_accumulate_regret(self, info_state_node, iteration_number, cfr_regrets):
        """Regret matching+: add the instantaneous regrets, floor the sum at zero."""
        return {
            a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])
            for a in info_state_node.legal_actions
        }


class PolicyFromRegretAccumulator:
    def get_updated_current_policy(self, info_state_node, iteration_number, cfr_regrets, previous_policy):
        """Regret matching on the (already updated) cumulative regrets; uniform when none is positive."""
        acts = info_state_node.legal_actions
        pos = {a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0)) for a in acts}
        total = sum(pos.values())
        if total > 0:
            return {a: pos[a] / total for a in acts}
        return {a: 1.0 / len(acts) for a in acts}


class PolicyAccumulator:
    def update_accumulate_policy(self, info_state_node, iteration_number, info_state_policy, cfr_regrets,
                                 reach_prob, counterfactual_reach_prob):
        """Linear averaging: weight (t + 1) times the player's own reach."""
        w = (iteration_number + 1) * reach_prob
        return {
            a: info_state_node.cumulative_policy.get(a, 0.0) + w * info_state_policy[a]
            for a in info_state_node.legal_actions
        }
