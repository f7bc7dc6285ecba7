"""Shared math of sb3-npg: Fisher-vector products, conjugate gradient, KL estimators and penalty controllers."""
