"""Activation (一键启动): switching a scope to wartime, posts, orders, temporary branches, switch-back."""
