"""The Telegram bot: alert delivery (``channel``), HTML (``format``), buttons (``keyboards``, ``callbacks``),
the command table (``commands``), the polling loop (``bot``), what it reads (``status``) and escalation.

Importing this package imports nothing: ``riskd run`` without a token never loads python-telegram-bot's
HTTP machinery through it.
"""
