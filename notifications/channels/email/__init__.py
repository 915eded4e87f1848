"""The email channel: templates, unsubscribe links and SMTP delivery (see ``delivery``)."""
