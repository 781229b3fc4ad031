# /etc/profile written by hpcannotate: the base image had none, so a login shell (`sh -l`,
# `bash -l`) read no profile and the application's environment in /etc/profile.d never loaded.
for profile in /etc/profile.d/*.sh; do
    if [ -r "$profile" ]; then
        . "$profile"
    fi
done
unset profile
