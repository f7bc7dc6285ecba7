"""rl-baselines3-zoo integration: shipped hyperparameters, algorithm registry, Optuna samplers and the command line."""
