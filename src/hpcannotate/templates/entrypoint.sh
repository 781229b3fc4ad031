#!/bin/sh
# hpcannotate entrypoint: load the application's environment, then run the command as given.
# It makes no runtime decision (no binary selection): one image, one binary set, one CPU target.
if [ -r /etc/profile.d/hpcannotate.sh ]; then
    . /etc/profile.d/hpcannotate.sh
fi
exec "$@"
