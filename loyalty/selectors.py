from loyalty.models import ProgrammeSettings


def programme_settings_get() -> ProgrammeSettings:
    """The programme settings row, created with defaults the first time it is asked for."""
    settings, _ = ProgrammeSettings.objects.get_or_create(pk=1)
    return settings
