"""The notifier: tells people (Slack, signed webhook, e-mail) what needs them."""
