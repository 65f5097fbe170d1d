"""The CronJob controller: schedule math (``schedule``), pure sync decisions
(``decisions``) and the reconciler (``controller``)."""
