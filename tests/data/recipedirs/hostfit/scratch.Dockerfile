# Nothing to run at build time: the image holds only hpcannotate's profile and entrypoint.
