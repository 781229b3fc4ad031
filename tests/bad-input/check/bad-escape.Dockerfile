# escape=x
FROM ubuntu
