from django.db import models


class Reminder(models.Model):
    """A typical expand step: a new table with a foreign key and an index."""

    recipient = models.ForeignKey("notifications.EndUser", on_delete=models.CASCADE)
    remind_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["remind_at"], name="reminder_due")]

    def __str__(self) -> str:
        return f"{self.recipient_id} at {self.remind_at}"
