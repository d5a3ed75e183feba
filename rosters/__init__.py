"""rosters: who we have — the org tree, people, teams, work groups, pre-assignments, import and export."""
